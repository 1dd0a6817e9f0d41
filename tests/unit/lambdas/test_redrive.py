"""Redrive (aiwf.control.redrive_task) on moto in process: the task goes on from the step where it
ended, with the context as it was before it; `drive` (state_machine.py) plays the new execution."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from aiwf import standard_executions, step_handlers
from aiwf.control import redrive_task
from aiwf.errors import Conflict, NotFound, StepError
from aiwf.history_handover import next_execution_name
from aiwf.protocol import Action
from aiwf.repository import TaskRepository
from aiwf.runner import finalize_failure
from aiwf.settings import get_settings
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import drive, start

pytestmark = pytest.mark.usefixtures("aws_tables")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orchestrator"


def flow(steps: dict[str, Any], start_at: str = "a", **extra: Any) -> dict[str, Any]:
    return {"id": f"unit-{uuid.uuid4().hex[:8]}", "startAt": start_at, "steps": steps, **extra}


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the executions redrives started (none really starts: `drive` plays them)."""
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    get_settings.cache_clear()
    started: list[str] = []

    def start_execution(machine_arn: str, name: str, task_id: str) -> str:
        started.append(name)
        return machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    monkeypatch.setattr(standard_executions, "start", start_execution)
    return started


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """`task` step handlers `unit-count` (counts) and `unit-flaky-N` (fails its first N calls)."""
    step_handlers.load_handlers()
    counted: dict[str, int] = {}

    def counting(fails: int):
        def run(payload: Any, *, task_id: str, step_id: str) -> Any:
            counted[step_id] = counted.get(step_id, 0) + 1
            if counted[step_id] <= fails:
                raise StepError("Flaky", f"call {counted[step_id]} failed")
            return {"call": counted[step_id]}

        return run

    monkeypatch.setitem(step_handlers.HANDLERS, "unit-count", counting(0))
    monkeypatch.setitem(step_handlers.HANDLERS, "unit-flaky-1", counting(1))
    monkeypatch.setitem(step_handlers.HANDLERS, "unit-flaky-2", counting(2))
    return counted


def test_a_step_error_redriven_runs_on_from_that_step_with_its_input_context(executions, calls):
    task_id = start(
        flow(
            {
                "a": {"type": "task", "handler": "unit-count", "resultPath": "a", "next": "b"},
                "b": {"type": "task", "handler": "unit-flaky-2", "resultPath": "b", "next": "done"},
                "done": {"type": "succeed"},
            }
        )
    )
    assert drive(task_id)["action"] == Action.FAILED
    repo = TaskRepository()
    failed = repo.get(task_id)
    assert failed.error["stepId"] == "b" and failed.steps_run == 2

    redriven = redrive_task(task_id)
    assert (redriven.status, redriven.current_step, redriven.error, redriven.redrive_count) == ("RUNNING", "b", None, 1)
    assert redriven.seq == failed.seq + 1 and redriven.steps_run == failed.steps_run  # the budget carries over
    assert redriven.context == failed.context and redriven.state()["redriveCount"] == 1
    assert redriven.execution_arn.endswith(f":{task_id}-r1") and executions == [f"{task_id}-r1"]
    with pytest.raises(Conflict) as again:  # twice in a row: one redrive, no second execution
        redrive_task(task_id)
    assert again.value.code == "NOT_REDRIVABLE" and executions == [f"{task_id}-r1"]

    assert drive(task_id)["action"] == Action.FAILED  # b fails a second time
    redrive_task(task_id)
    assert drive(task_id)["action"] == Action.SUCCEEDED
    done = repo.get(task_id)
    assert calls == {"a": 1, "b": 3}
    assert done.redrive_count == 2 and executions == [f"{task_id}-r1", f"{task_id}-r2"]
    history = repo.history(task_id)
    assert [state["seq"] for state in history] == list(range(1, done.seq + 1))
    assert [s["redriveCount"] for s in history if s["status"] == "RUNNING" and s["currentStep"] == "b"][-2:] == [1, 2]


def test_a_parallel_step_redriven_reruns_only_the_failed_branch(executions, calls):
    def branch(handler: str, call: str) -> dict[str, Any]:
        return {
            "startAt": call,
            "steps": {
                call: {"type": "task", "handler": handler, "resultPath": "r", "next": "ok"},
                "ok": {"type": "succeed", "outputPath": "r"},
            },
        }

    task_id = start(
        flow(
            {
                "a": {
                    "type": "parallel",
                    "branches": [
                        {"id": "good", **branch("unit-count", "good")},
                        {"id": "bad", **branch("unit-flaky-1", "bad")},
                    ],
                    "resultPath": "branches",
                    "next": "done",
                },
                "done": {"type": "succeed", "outputPath": "branches"},
            }
        )
    )
    assert drive(task_id)["action"] == Action.FAILED
    assert TaskRepository().get(task_id).error["branchId"] == "bad"

    redrive_task(task_id)
    assert drive(task_id)["action"] == Action.SUCCEEDED
    assert calls == {"good": 1, "bad": 2}
    assert TaskRepository().get(task_id).output == [
        {"branchId": "good", "output": {"call": 1}},
        {"branchId": "bad", "output": {"call": 2}},
    ]


def test_only_failed_timed_out_or_aborted_tasks_not_ended_by_a_fail_step_are_redrivable(executions, calls):
    with pytest.raises(NotFound):
        redrive_task("no-such-task")
    failing = start(flow({"a": {"type": "fail", "error": "Broke"}}))
    assert drive(failing)["action"] == Action.FAILED
    with pytest.raises(Conflict) as refused:
        redrive_task(failing)
    assert refused.value.code == "NOT_REDRIVABLE"
    succeeding = start(flow({"a": {"type": "succeed"}}))
    assert drive(succeeding)["action"] == Action.SUCCEEDED
    with pytest.raises(Conflict):
        redrive_task(succeeding)
    assert executions == []


def test_the_finalize_of_an_older_execution_records_nothing(executions, calls):
    task_id = start(
        flow({"a": {"type": "task", "handler": "unit-flaky-1", "next": "done"}, "done": {"type": "succeed"}})
    )
    drive(task_id)
    redriven = redrive_task(task_id)
    old = MACHINE.replace(":stateMachine:", ":execution:") + f":{task_id}"
    finalize_failure(task_id, {"errorName": "Late", "errorMessage": "old execution"}, old)
    assert TaskRepository().get(task_id).seq == redriven.seq


def test_a_redriven_execution_continues_under_its_own_name():
    task_id = str(uuid.uuid4())
    execution = f"arn:aws:states:us-east-1:1:execution:m:{task_id}"
    assert next_execution_name(task_id, execution) == f"{task_id}-c2"
    assert next_execution_name(task_id, f"{execution}-c2") == f"{task_id}-c3"
    assert next_execution_name(task_id, f"{execution}-r1") == f"{task_id}-r1-c2"
    assert next_execution_name(task_id, f"{execution}-r1-c2") == f"{task_id}-r1-c3"
