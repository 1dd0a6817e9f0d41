"""Quick runs on the Express machine: which flows may take it, and how a run leaves it in time.

`POST /tasks` with `"wait"` starts a flow that has no `wait_for_event` and no `poll` (at any depth)
on the Express state machine with StartSyncExecution: one Express request instead of a Standard
execution's transitions, and the answer comes back on the same call. An Express execution ends
after five minutes whatever it is doing, with no event and no Catch, so a run must never get near
that: on the Express machine ProcessSteps hands the task over to a fresh Standard execution
(`<taskId>-c2`, CONTINUED, as the history handover does) before a `parallel` step forks, at the
first call after `EXPRESS_BUDGET_SECONDS`, and instead of a step retry whose wait would end past
`EXPRESS_RETRY_HORIZON_SECONDS`. Inline steps run within the budget; the Standard execution goes
on from the committed state, so no step runs twice.

The API records the execution before it starts (its name is the task id, its ARN unknown until
AWS adds a UUID), so the task names an *Express reservation* `...:express:<machine>:<taskId>` that
the real ARN `...:express:<machine>:<taskId>:<uuid>` extends; ProcessSteps records the real ARN
with the task's first change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from . import settings
from .clock import seconds_since
from .history_handover import continue_in_fresh_execution
from .native_steps import NATIVE_STEPS
from .protocol import EXPRESS_ACTIONS, Action
from .repository import Task
from .settings import get_settings

log = logging.getLogger(__name__)

# Step types a quick run may not contain at all: they wait for the world, for minutes or days.
WAITING_STEP_TYPES = frozenset({"wait_for_event", "poll"})


def budget_seconds() -> float:
    return settings.express_budget_seconds()


def retry_horizon_seconds() -> float:
    return settings.express_retry_horizon_seconds()


def _steps(steps: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for step in steps.values():
        yield step
        if step.get("type") == "parallel":
            branches = step["branches"] if "branches" in step else [step["forEach"]["branch"]]
            for branch in branches:
                yield from _steps(branch.get("steps") or {})


def runs_on_express(document: dict[str, Any]) -> bool:
    """True for a flow with no `wait_for_event` and no `poll`, in any branch: a quick run of it may
    take the Express machine."""
    return not any(step.get("type") in WAITING_STEP_TYPES for step in _steps(document.get("steps") or {}))


def is_express(execution_arn: str | None) -> bool:
    return bool(execution_arn) and ":express:" in str(execution_arn)


def reservation_arn(express_machine_arn: str, task_id: str) -> str:
    """What the task records before StartSyncExecution: the real ARN is this plus `:<uuid>`."""
    return express_machine_arn.replace(":stateMachine:", ":express:", 1) + f":{task_id}"


def start_sync(machine_arn: str, task_id: str, read_timeout: int) -> dict[str, Any]:
    """StartSyncExecution of the task's quick run, sent once (no SDK retries: a retry would be a
    second run, which Express, unlike Standard, does not refuse) and waited for `read_timeout`
    seconds; its answer, or ReadTimeoutError while the run goes on."""
    return _sync_client(read_timeout).start_sync_execution(
        stateMachineArn=machine_arn, name=task_id, input=json.dumps({"taskId": task_id, "rounds": 0})
    )


@lru_cache(maxsize=32)
def _sync_client(read_timeout: int) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=read_timeout)
    return boto3.client("stepfunctions", config=config)


def same_execution(recorded: str | None, reported: str | None) -> bool:
    """True when the execution a call reports is the one the task records (or its reservation)."""
    if not recorded or not reported:
        return True  # nothing to compare: do not refuse on missing data
    return reported == recorded or (is_express(recorded) and reported.startswith(recorded + ":"))


class ExpressRun:
    """One call of ProcessSteps on the Express machine: when it must hand its task over."""

    def __init__(self, execution_arn: str, started_at: str | None) -> None:
        self.execution_arn = execution_arn
        self.started_at = started_at

    @classmethod
    def of(cls, execution_arn: str | None, started_at: str | None) -> ExpressRun | None:
        return cls(str(execution_arn), started_at) if is_express(execution_arn) else None

    def elapsed(self) -> float:
        return seconds_since(self.started_at) if self.started_at else 0.0

    def out_of_budget(self) -> bool:
        return self.elapsed() >= budget_seconds()

    def must_leave_before(self, step: dict[str, Any], began: bool) -> bool:
        """A step whose state the Express machine lacks (a fork: the flow has no waits or polls),
        before it begins: the Standard execution runs it from its start."""
        return step.get("type") in NATIVE_STEPS and not began

    def keeps(self, answer: dict[str, Any]) -> bool:
        """Whether this Express execution can follow `answer` itself."""
        if answer["action"] not in EXPRESS_ACTIONS:
            return False
        if answer["action"] == Action.RETRY:
            return self.elapsed() + float(answer.get("seconds", 0)) < retry_horizon_seconds()
        return True

    def hand_over(self, task: Task, why: str) -> dict[str, Any]:
        """Start the task on the Standard machine and answer CONTINUED, which ends this execution."""
        log.info("quick run continues on the Standard machine", extra={"taskId": task.task_id, "why": why})
        return continue_in_fresh_execution(task, get_settings().state_machine_arn, f"{task.task_id}-c2")
