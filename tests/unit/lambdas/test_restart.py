"""Restart (aiwf.restart.restart_task) on moto in process: after the local stack restarted, a task
that had not ended gets its execution again under the recorded name and goes on from its record;
a wait is announced again and its old token is told why it no longer works."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from aiwf import callbacks, standard_executions, step_handlers
from aiwf.callbacks import register_wait, resume_task
from aiwf.errors import Gone
from aiwf.protocol import Action, StepStateKind
from aiwf.repository import TaskRepository
from aiwf.restart import restart_task
from aiwf.runner import process_steps
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import checked, drive, start

pytestmark = pytest.mark.usefixtures("aws_tables")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orchestrator"
OLD, NEW = "old-token-" + "a" * 30, "new-token-" + "b" * 30


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(machine, name) of every execution a restart started (none really starts: the tests drive)."""
    started: list[tuple[str, str]] = []

    def start_execution(machine_arn: str, name: str, task_id: str) -> str:
        started.append((machine_arn, name))
        return machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    monkeypatch.setattr(standard_executions, "start", start_execution)
    return started


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []

    class Fake:
        def send_task_success(self, **kwargs: Any) -> None:
            sent.append(kwargs["taskToken"])

    monkeypatch.setattr(standard_executions, "client", lambda service: Fake())
    return sent


def _with_execution(task_id: str, name: str) -> None:
    repo = TaskRepository()
    repo.set_execution(repo.get(task_id), MACHINE.replace(":stateMachine:", ":execution:") + f":{name}")


def _flow(steps: dict[str, Any], start_at: str) -> dict[str, Any]:
    return {"id": f"restart-{uuid.uuid4().hex[:8]}", "startAt": start_at, "steps": steps}


WAIT = {"type": "wait_for_event", "timeoutSeconds": 3600, "resultPath": "approval", "next": "done"}


def test_a_waiting_task_waits_again_with_a_new_token_and_the_old_one_is_gone(executions, sfn):
    task_id = start(_flow({"approve": WAIT, "done": {"type": "succeed", "outputPath": "approval"}}, "approve"))
    _with_execution(task_id, task_id)
    assert drive(task_id)["action"] == Action.WAIT
    register_wait(task_id, "approve", OLD)

    assert restart_task(task_id)["restarted"] is True
    assert executions == [(MACHINE, task_id)]  # the recorded execution, started again under its name
    # The new execution: ProcessSteps answers the wait again, and its Lambda registers a new token.
    assert checked(process_steps(task_id, lambda: 60_000))["action"] == Action.WAIT
    register_wait(task_id, "approve", NEW)
    again = TaskRepository().get(task_id)
    assert again.status == "WAITING" and again.resume_token_hash == callbacks.token_hash(NEW)

    with pytest.raises(Gone) as old:
        resume_task(task_id, OLD, "SUCCEEDED", {"by": "old"}, None)
    assert old.value.code == "TOKEN_REPLACED" and "restarted" in old.value.message
    with pytest.raises(Gone):
        callbacks.heartbeat_task(task_id, OLD)
    resume_task(task_id, NEW, "SUCCEEDED", {"by": "new"}, None)
    assert sfn == [NEW]
    assert drive(task_id)["action"] == Action.SUCCEEDED
    assert TaskRepository().get(task_id).output == {"by": "new"}


def test_a_wait_registered_again_by_a_retry_keeps_its_token(executions):
    """Only a wait announced again replaces its token: a retried registerWait with the same token
    is not a replacement, and a wrong token stays a wrong token."""
    task_id = start(_flow({"approve": WAIT, "done": {"type": "succeed"}}, "approve"))
    drive(task_id)
    register_wait(task_id, "approve", OLD)
    register_wait(task_id, "approve", OLD)
    assert TaskRepository().get(task_id).replaced_token_hash is None


def test_a_parallel_step_runs_again_only_the_branches_that_had_not_ended(executions, monkeypatch):
    calls: dict[str, int] = {}

    def count(payload: Any, *, task_id: str, step_id: str) -> Any:
        calls[step_id] = calls.get(step_id, 0) + 1
        return calls[step_id]

    step_handlers.load_handlers()
    monkeypatch.setitem(step_handlers.HANDLERS, "unit-restart-count", count)
    quick = {"startAt": "q", "steps": {"q": {"type": "task", "handler": "unit-restart-count", "next": "e"}}}
    quick["steps"]["e"] = {"type": "succeed"}
    slow = {"startAt": "w", "steps": {"w": {**WAIT, "next": "e"}, "e": {"type": "succeed"}}}
    task_id = start(
        _flow(
            {
                "fan": {
                    "type": "parallel",
                    "branches": [{"id": "quick", **quick}, {"id": "slow", **slow}],
                    "resultPath": "r",
                    "next": "done",
                },
                "done": {"type": "succeed"},
            },
            "fan",
        )
    )
    _with_execution(task_id, f"{task_id}-r1")  # a redriven task: its execution has that name
    forked = checked(process_steps(task_id, lambda: 60_000))
    assert forked["action"] == Action.PARALLEL
    quick_id, slow_id = forked["branches"]
    assert drive(quick_id)["action"] == Action.SUCCEEDED
    assert drive(slow_id)["action"] == Action.WAIT
    register_wait(slow_id, "w", OLD)

    restart_task(task_id)

    assert executions == [(MACHINE, f"{task_id}-r1")]
    parent = TaskRepository().get(task_id)
    assert parent.step_state["kind"] == StepStateKind.PARALLEL and parent.step_state["rerun"] == [slow_id]
    again = checked(process_steps(task_id, lambda: 60_000))
    assert again["action"] == Action.PARALLEL and again["branches"] == [slow_id]
    assert drive(slow_id)["action"] == Action.WAIT
    register_wait(slow_id, "w", NEW)
    with pytest.raises(Gone) as old:
        resume_task(slow_id, OLD, "SUCCEEDED", None, None)
    assert old.value.code == "TOKEN_REPLACED"
    assert calls == {"q": 1}  # the branch that had ended did not run again


def test_tasks_that_ended_and_branch_records_are_not_restarted(executions):
    done = start(_flow({"done": {"type": "succeed"}}, "done"))
    assert drive(done)["action"] == Action.SUCCEEDED
    assert restart_task(done) == {"taskId": done, "restarted": False}
    assert restart_task("no-such-task")["restarted"] is False
    assert executions == []


def test_a_task_whose_start_never_reached_step_functions_starts_under_its_id(executions, monkeypatch):
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    from aiwf.settings import get_settings

    get_settings.cache_clear()
    task_id = start(_flow({"done": {"type": "succeed"}}, "done"))
    restarted = restart_task(task_id)
    assert executions == [(MACHINE, task_id)]
    assert TaskRepository().get(task_id).execution_arn == restarted["executionArn"]
    assert drive(task_id)["action"] == Action.SUCCEEDED


def test_a_quick_run_cut_off_on_express_goes_on_as_the_tasks_standard_execution(executions, monkeypatch):
    """An Express execution's ARN names no Standard machine: the task goes on under its own id there."""
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    from aiwf.settings import get_settings

    get_settings.cache_clear()
    task_id = start(_flow({"done": {"type": "succeed"}}, "done"))
    repo = TaskRepository()
    express = f"arn:aws:states:us-east-1:123456789012:express:orchestrator-express:{task_id}:6b1c"
    repo.set_execution(repo.get(task_id), express)
    restarted = restart_task(task_id)
    assert executions == [(MACHINE, task_id)]
    assert repo.get(task_id).execution_arn == restarted["executionArn"] != express
    assert drive(task_id)["action"] == Action.SUCCEEDED


def test_a_polling_task_goes_on_with_the_attempts_it_had_made(executions, monkeypatch):
    checks = iter(["working", "working", "done"])
    step_handlers.load_handlers()
    monkeypatch.setitem(step_handlers.HANDLERS, "unit-restart-status", lambda payload, **_: {"state": next(checks)})
    poll = {
        "type": "poll",
        "check": {"type": "task", "handler": "unit-restart-status"},
        "until": {"path": "state", "equals": "done"},
        "intervalSeconds": 5,
        "backoffRate": 2,
        "maxAttempts": 5,
        "resultPath": "report",
        "next": "done",
    }
    task_id = start(_flow({"check": poll, "done": {"type": "succeed", "outputPath": "report"}}, "check"))
    _with_execution(task_id, task_id)
    assert checked(process_steps(task_id, lambda: 60_000))["action"] == Action.POLL  # check 1

    restart_task(task_id)

    assert executions == [(MACHINE, task_id)]
    # The new execution: ProcessSteps hands the poll back to its Wait, with the backoff of 1 check,
    # no check run again; then the checks go on from the second.
    again = checked(process_steps(task_id, lambda: 60_000))
    assert again == {"taskId": task_id, "action": Action.POLL, "stepId": "check", "seconds": 5}
    assert TaskRepository().get(task_id).step_state["attempts"] == 1
    assert drive(task_id)["action"] == Action.SUCCEEDED
    assert TaskRepository().get(task_id).output == {"state": "done"}
