"""The state machine's part in unit tests of the step loop: start a task, route its answers.

`drive` calls the real ProcessSteps / PollCheck (aiwf.runner) the way Route does, with no waits
and the branches of a parallel step one after another; it stops at an answer only the outside
world can move on (WAIT: a resume) or at the end. Every answer is checked against the protocol
(schema/orchestrator.json): a declared action, carrying only the fields that action declares.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiwf import protocol
from aiwf.clock import now_iso
from aiwf.flow_store import FlowStore
from aiwf.flows import validation_errors
from aiwf.protocol import Action
from aiwf.repository import Task, TaskRepository
from aiwf.runner import poll_check, process_steps


def start(document: dict[str, Any], task_input: Any = None) -> str:
    """Register `document` and create a PENDING task of it, as POST /tasks does."""
    assert validation_errors(document) == []
    flow, _ = FlowStore().register(document)
    task_id = str(uuid.uuid4())
    now = now_iso()
    TaskRepository().create(
        Task(
            task_id=task_id,
            flow_id=flow.flow_id,
            flow_version=flow.version,
            status="PENDING",
            seq=1,
            started_at=now,
            updated_at=now,
            context={"input": task_input or {}, "taskId": task_id},
        )
    )
    return task_id


def action_fields(action: str) -> frozenset[str]:
    """The keys an answer with `action` may carry besides `taskId` and `action` (the protocol file's)."""
    return frozenset(protocol.DOCUMENT["actions"][action]["fields"])


def checked(answer: dict[str, Any]) -> dict[str, Any]:
    """`answer`, after checking it speaks the protocol."""
    action = Action(answer["action"])
    extra = set(answer) - {"taskId", "action"}
    assert extra <= action_fields(action), f"{action} carries undeclared {sorted(extra)}"
    return answer


def drive(task_id: str, per_invocation: int = 200, invocations: int = 200) -> dict[str, Any]:
    """Route the task's answers until it ends or waits for an event; the last answer."""
    answer = checked(process_steps(task_id, lambda: 60_000, per_invocation))
    for _ in range(invocations):
        action = answer["action"]
        if action == Action.PARALLEL:
            for record_id in answer["branches"]:
                drive(record_id, per_invocation, invocations)
        elif action == Action.POLL:
            answer = checked(poll_check(task_id, lambda: 60_000))
            continue
        elif action not in (Action.PROCESS, Action.RETRY):
            return answer
        answer = checked(process_steps(task_id, lambda: 60_000, per_invocation))
    raise AssertionError(f"task {task_id} still running after {invocations} invocations")
