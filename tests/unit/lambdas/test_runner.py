"""The step loop (aiwf.runner) on moto in process: each way a round can end, and the calls around it.

Each exit of a round answers Route with one protocol action and commits one state change:
a timeout, a step error (retried, caught, or failing the task), a native step handing over,
a fail step, a succeed step, or the next step. `drive` (state_machine.py) plays Route.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiwf import history_handover, step_handlers
from aiwf.errors import StepError
from aiwf.protocol import Action, StepStateKind
from aiwf.repository import Task, TaskRepository
from aiwf.runner import finalize_failure, poll_check, process_steps
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import checked, drive, start

pytestmark = pytest.mark.usefixtures("aws_tables")


def flow(steps: dict[str, Any], start_at: str = "a", **extra: Any) -> dict[str, Any]:
    return {"id": f"unit-{uuid.uuid4().hex[:8]}", "startAt": start_at, "steps": steps, **extra}


def statuses(task_id: str) -> list[str]:
    return [state["status"] for state in TaskRepository().history(task_id)]


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch):
    """Register a `task` step handler for one test: handler(name, function)."""
    step_handlers.load_handlers()

    def register(name: str, function: Any) -> None:
        monkeypatch.setitem(step_handlers.HANDLERS, name, function)

    return register


def test_inline_steps_run_in_one_invocation_and_each_boundary_is_committed():
    task_id = start(
        flow(
            {
                "a": {"type": "transform", "value": "{{ input.n + 1 }}", "resultPath": "n", "next": "b"},
                "b": {"type": "choice", "choices": [{"path": "n", "equals": 2, "next": "done"}], "default": "a"},
                "done": {"type": "succeed", "outputPath": "n"},
            }
        ),
        {"n": 1},
    )

    answer = checked(process_steps(task_id, lambda: 60_000))

    assert answer == {"taskId": task_id, "action": Action.SUCCEEDED}
    task = TaskRepository().get(task_id)
    assert task.output == 2 and task.steps_run == 3
    assert statuses(task_id) == ["PENDING", "RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"]


def test_an_invocation_short_of_time_hands_over_to_a_fresh_one():
    steps = {
        "a": {"type": "transform", "value": 1, "resultPath": "a", "next": "b"},
        "b": {"type": "transform", "value": 2, "resultPath": "b", "next": "done"},
        "done": {"type": "succeed"},
    }
    task_id = start(flow(steps))

    answer = checked(process_steps(task_id, lambda: 1_000))  # under the safety margin after one step

    assert answer["action"] == Action.PROCESS
    assert TaskRepository().get(task_id).current_step == "b"
    assert drive(task_id)["action"] == Action.SUCCEEDED


def test_a_task_past_its_timeout_ends_timed_out_before_its_next_step(monkeypatch):
    task_id = start(flow({"a": {"type": "succeed"}}, timeoutSeconds=60))
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    read = TaskRepository.get

    def started_long_ago(self: TaskRepository, wanted: str) -> Task | None:
        task = read(self, wanted)
        return replace(task, started_at=an_hour_ago) if task is not None else None

    monkeypatch.setattr(TaskRepository, "get", started_long_ago)
    answer = checked(process_steps(task_id, lambda: 60_000))

    assert answer["action"] == Action.FAILED and answer["error"]["errorName"] == "States.Timeout"
    assert answer["error"]["stepId"] == "a"
    assert TaskRepository().get(task_id).status == "TIMED_OUT"


def test_a_retryable_step_error_is_retried_by_the_state_machine_then_succeeds(handler):
    calls = []

    def flaky(payload: Any, *, task_id: str, step_id: str) -> Any:
        calls.append(step_id)
        if len(calls) < 3:
            raise StepError("Flaky", "try again", retryable=True)
        return "ok"

    handler("unit-flaky", flaky)
    retry = {"maxAttempts": 3, "intervalSeconds": 2, "backoffRate": 3}
    task_id = start(
        flow(
            {
                "a": {"type": "task", "handler": "unit-flaky", "retry": retry, "next": "done"},
                "done": {"type": "succeed"},
            }
        )
    )

    first = checked(process_steps(task_id, lambda: 60_000))
    assert first == {"taskId": task_id, "action": Action.RETRY, "stepId": "a", "attempt": 1, "seconds": 2}
    assert TaskRepository().get(task_id).step_state == {"kind": StepStateKind.RETRY, "stepId": "a", "attempts": 1}
    second = checked(process_steps(task_id, lambda: 60_000))
    assert second["attempt"] == 2 and second["seconds"] == 6  # intervalSeconds * backoffRate
    assert checked(process_steps(task_id, lambda: 60_000))["action"] == Action.SUCCEEDED
    assert TaskRepository().get(task_id).context["a"] == "ok"


def test_retries_spent_or_an_error_not_retryable_fails_the_task(handler):
    def broken(payload: Any, *, task_id: str, step_id: str) -> Any:
        raise StepError("Broken", "no", retryable=True)

    handler("unit-broken", broken)
    retry = {"maxAttempts": 1, "intervalSeconds": 1}
    task_id = start(
        flow(
            {
                "a": {"type": "task", "handler": "unit-broken", "retry": retry, "next": "done"},
                "done": {"type": "succeed"},
            }
        )
    )

    answer = drive(task_id)

    assert answer["action"] == Action.FAILED
    assert answer["error"] == {
        "errorName": "Broken",
        "errorMessage": "no",
        "errorDetails": None,
        "retryable": True,
        "stepId": "a",
        "branchId": None,
    }
    task = TaskRepository().get(task_id)
    assert task.status == "FAILED" and task.error == answer["error"] and task.step_state is None


def test_a_caught_error_goes_on_at_the_catch_step_with_the_error_in_the_context(handler):
    handler("unit-bug", lambda payload, **_: {}["missing"])
    task_id = start(
        flow(
            {
                "a": {"type": "task", "handler": "unit-bug", "catch": "recover", "next": "done"},
                "recover": {"type": "succeed", "outputPath": "error"},
                "done": {"type": "succeed"},
            }
        )
    )

    answer = drive(task_id)

    assert answer["action"] == Action.SUCCEEDED
    output = TaskRepository().get(task_id).output
    assert output["errorName"] == "KeyError" and output["stepId"] == "a"


def test_a_fail_step_ends_the_task_with_its_error():
    task_id = start(
        flow({"a": {"type": "fail", "error": "Rejected", "cause": "because {{ input.why }}"}}), {"why": "x"}
    )

    answer = drive(task_id)

    assert answer["action"] == Action.FAILED
    assert answer["error"]["errorName"] == "Rejected" and answer["error"]["errorMessage"] == "because x"
    assert TaskRepository().get(task_id).status == "FAILED"


def test_a_poll_hands_over_between_checks_and_goes_on_when_the_condition_holds(handler):
    checks = iter(["working", "working", "done"])
    handler("unit-status", lambda payload, **_: {"state": next(checks)})
    poll = {
        "type": "poll",
        "check": {"type": "task", "handler": "unit-status"},
        "until": {"path": "state", "equals": "done"},
        "intervalSeconds": 5,
        "backoffRate": 2,
        "maxAttempts": 5,
        "resultPath": "report",
        "next": "done",
    }
    task_id = start(flow({"a": poll, "done": {"type": "succeed", "outputPath": "report"}}))

    first = checked(process_steps(task_id, lambda: 60_000))
    assert first == {"taskId": task_id, "action": Action.POLL, "stepId": "a", "seconds": 5}
    task = TaskRepository().get(task_id)
    assert task.status == "POLLING" and task.step_state["kind"] == StepStateKind.POLL
    second = checked(poll_check(task_id, lambda: 60_000))
    assert second["action"] == Action.POLL and second["seconds"] == 10  # the backoff grows
    assert checked(poll_check(task_id, lambda: 60_000))["action"] == Action.SUCCEEDED
    assert TaskRepository().get(task_id).output == {"state": "done"}


def test_a_poll_that_never_holds_fails_with_poll_timeout(handler):
    handler("unit-never", lambda payload, **_: {"state": "working"})
    poll = {
        "type": "poll",
        "check": {"type": "task", "handler": "unit-never"},
        "until": {"path": "state", "equals": "done"},
        "intervalSeconds": 1,
        "maxAttempts": 2,
        "next": "done",
    }
    task_id = start(flow({"a": poll, "done": {"type": "succeed"}}))

    answer = drive(task_id)

    assert answer["error"]["errorName"] == "PollTimeout"
    assert answer["error"]["errorDetails"] == {"attempts": 2, "lastResult": {"state": "working"}}


@pytest.mark.parametrize(("status", "action"), [("SUCCEEDED", Action.SUCCEEDED), ("TIMED_OUT", Action.FAILED)])
def test_a_call_for_a_final_task_answers_how_it_ended(status, action):
    task_id = start(flow({"a": {"type": "succeed"}}))
    repo = TaskRepository()
    error = None if status == "SUCCEEDED" else {"errorName": "States.Timeout"}
    repo.save(repo.get(task_id), status=status, error=error)
    seq = repo.get(task_id).seq

    answer = checked(process_steps(task_id, lambda: 60_000))

    assert answer["action"] == action and answer.get("error") == error
    assert repo.get(task_id).seq == seq  # nothing written


def test_a_missing_task_is_a_step_error():
    with pytest.raises(StepError) as raised:
        process_steps("no-such-task", lambda: 60_000)
    assert raised.value.error_name == "TaskNotFound"


def test_finalize_records_a_failure_outside_any_step_once():
    task_id = start(flow({"a": {"type": "succeed"}}))
    repo = TaskRepository()
    repo.save(repo.get(task_id), status="RUNNING", current_step="a")
    error = {"errorName": "Lambda.Unknown", "errorMessage": "died", "stepId": None}

    first = checked(finalize_failure(task_id, error))
    again = checked(finalize_failure(task_id, {**error, "errorName": "Other"}))

    assert first["error"]["stepId"] == "a" and again["error"]["errorName"] == "Lambda.Unknown"
    assert statuses(task_id) == ["PENDING", "RUNNING", "FAILED"]
    assert checked(finalize_failure("gone", error))["error"] == error


class FakeStepFunctions:
    """GetExecutionHistory reports `events` events; StartExecution is recorded."""

    def __init__(self, events: int) -> None:
        self.events = events
        self.started: list[dict[str, Any]] = []

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        return {"events": [{"id": self.events}]}

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        prefix = kwargs["stateMachineArn"].replace(":stateMachine:", ":execution:")
        return {"executionArn": f"{prefix}:{kwargs['name']}"}


def test_a_long_history_hands_the_task_over_to_a_fresh_execution(monkeypatch):
    sfn = FakeStepFunctions(events=20_000)
    monkeypatch.setattr(history_handover, "client", lambda service: sfn)
    task_id = start(flow({"a": {"type": "succeed"}}))
    execution = f"arn:aws:states:us-east-1:123456789012:execution:orchestrator:{task_id}"

    early = checked(process_steps(task_id, lambda: 60_000, execution_arn=execution, rounds=24))
    assert early["action"] == Action.SUCCEEDED and not sfn.started  # not due: no history read

    task_id = start(flow({"a": {"type": "succeed"}}))
    execution = f"arn:aws:states:us-east-1:123456789012:execution:orchestrator:{task_id}"
    answer = checked(process_steps(task_id, lambda: 60_000, execution_arn=execution, rounds=25))

    assert answer["action"] == Action.CONTINUED
    assert answer["executionArn"].endswith(f":{task_id}-c2")
    assert sfn.started[0]["stateMachineArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:orchestrator"
    assert TaskRepository().get(task_id).execution_arn == answer["executionArn"]
    assert TaskRepository().get(task_id).status == "PENDING"  # the fresh execution starts it
