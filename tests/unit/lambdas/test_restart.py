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
from aiwf.resume_tokens import token_hash
from aiwf.runner import process_steps
from tests.unit.lambdas.issued_tokens import record_issued_tokens
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import checked, drive, start

pytestmark = pytest.mark.usefixtures("aws_tables")


@pytest.fixture
def issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resume tokens waits handed out in this test, oldest first."""
    return record_issued_tokens(monkeypatch)


MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orchestrator"
# The engine's handles on the wait: the first execution's task token, and the restarted one's.
OLD, NEW = "old-task-token-" + "a" * 30, "new-task-token-" + "b" * 30


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


def test_a_waiting_task_waits_again_with_a_new_token_and_the_old_one_is_gone(executions, sfn, issued_tokens):
    task_id = start(_flow({"approve": WAIT, "done": {"type": "succeed", "outputPath": "approval"}}, "approve"))
    _with_execution(task_id, task_id)
    assert drive(task_id)["action"] == Action.WAIT
    register_wait(task_id, "approve", OLD)
    first_wait = TaskRepository().get(task_id).wait_id

    assert restart_task(task_id)["restarted"] is True
    assert executions == [(MACHINE, task_id)]  # the recorded execution, started again under its name
    # The new execution: ProcessSteps answers the wait again, and its Lambda registers a new token.
    assert checked(process_steps(task_id, lambda: 60_000))["action"] == Action.WAIT
    register_wait(task_id, "approve", NEW)
    again = TaskRepository().get(task_id)
    old_token, new_token = issued_tokens
    assert again.status == "WAITING" and again.resume_token_hash == token_hash(new_token)
    assert again.wait_id == first_wait and again.engine_token == NEW  # the same wait, announced again

    with pytest.raises(Gone) as old:
        callbacks.callback_task(first_wait, old_token, "SUCCEEDED", {"by": "old"}, None)
    assert old.value.code == "TOKEN_REPLACED" and "restarted" in old.value.message
    with pytest.raises(Gone):
        callbacks.heartbeat_task(task_id, old_token)
    callbacks.callback_task(first_wait, new_token, "SUCCEEDED", {"by": "new"}, None)
    assert sfn == [NEW]
    assert drive(task_id)["action"] == Action.SUCCEEDED
    assert TaskRepository().get(task_id).output == {"by": "new"}


def test_a_new_wait_gets_a_new_wait_id(executions, sfn, issued_tokens):
    """A wait announced again keeps its id (above); the task's next wait is another one."""
    steps = {"approve": {**WAIT, "next": "again"}, "again": {**WAIT, "next": "done"}, "done": {"type": "succeed"}}
    task_id = start(_flow(steps, "approve"))
    drive(task_id)
    register_wait(task_id, "approve", OLD)
    first = TaskRepository().get(task_id)
    assert first.replaced_token_hash is None and first.engine_token == OLD
    resume_task(task_id, issued_tokens[-1], "SUCCEEDED", None, None)
    assert drive(task_id)["action"] == Action.WAIT
    register_wait(task_id, "again", NEW)
    second = TaskRepository().get(task_id)
    assert second.wait_id != first.wait_id and second.replaced_token_hash is None


def test_a_parallel_step_runs_again_only_the_branches_that_had_not_ended(executions, monkeypatch, issued_tokens):
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
    old_token = issued_tokens[-1]

    restart_task(task_id)

    assert executions == [(MACHINE, f"{task_id}-r1")]
    parent = TaskRepository().get(task_id)
    assert parent.step_state["kind"] == StepStateKind.PARALLEL and parent.step_state["rerun"] == [slow_id]
    again = checked(process_steps(task_id, lambda: 60_000))
    assert again["action"] == Action.PARALLEL and again["branches"] == [slow_id]
    assert drive(slow_id)["action"] == Action.WAIT
    register_wait(slow_id, "w", NEW)
    with pytest.raises(Gone) as old:
        resume_task(slow_id, old_token, "SUCCEEDED", None, None)
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
