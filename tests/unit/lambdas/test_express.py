"""Quick runs on the Express machine (aiwf.express, aiwf.runner), on moto in process: which flows
may take it, and each way a run leaves it for the Standard machine before Express's five minutes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiwf import history_handover, step_handlers
from aiwf.errors import StepError
from aiwf.express import ExpressRun, is_express, reservation_arn, runs_on_express, same_execution
from aiwf.protocol import Action
from aiwf.repository import TaskRepository
from aiwf.runner import finalize_failure, process_steps
from aiwf.settings import get_settings
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import checked, start

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:aiwf-dev-orchestrator"
EXPRESS_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:aiwf-dev-orchestrator-express"


def flow(steps: dict[str, Any], start_at: str = "a") -> dict[str, Any]:
    return {"id": f"unit-{uuid.uuid4().hex[:8]}", "startAt": start_at, "steps": steps}


def _branch(steps: dict[str, Any]) -> dict[str, Any]:
    return {"startAt": "x", "steps": steps}


@pytest.mark.parametrize(
    ("steps", "allowed"),
    [
        ({"a": {"type": "transform", "value": 1, "next": "b"}, "b": {"type": "succeed"}}, True),
        ({"a": {"type": "wait_for_event", "timeoutSeconds": 5, "next": "b"}, "b": {"type": "succeed"}}, False),
        (
            {
                "a": {
                    "type": "poll",
                    "check": {"type": "http", "url": "https://x.test"},
                    "until": {"path": "s", "equals": 1},
                    "next": "b",
                },
                "b": {"type": "succeed"},
            },
            False,
        ),
        (
            {
                "a": {
                    "type": "parallel",
                    "branches": [{"id": "p", **_branch({"x": {"type": "succeed"}})}],
                    "next": "b",
                },
                "b": {"type": "succeed"},
            },
            True,
        ),
        (
            {
                "a": {
                    "type": "parallel",
                    "forEach": {
                        "items": "{{ input.items }}",
                        "branch": _branch(
                            {
                                "x": {"type": "wait_for_event", "timeoutSeconds": 5, "next": "y"},
                                "y": {"type": "succeed"},
                            }
                        ),
                    },
                    "next": "b",
                },
                "b": {"type": "succeed"},
            },
            False,
        ),
    ],
    ids=["inline", "wait", "poll", "parallel", "wait-in-a-forEach-branch"],
)
def test_only_flows_without_waits_or_polls_at_any_depth_may_take_express(steps, allowed) -> None:
    assert runs_on_express({"startAt": "a", "steps": steps}) is allowed


def test_an_express_reservation_is_extended_by_the_real_arn_only() -> None:
    reserved = reservation_arn(EXPRESS_MACHINE, "t-1")
    assert reserved == "arn:aws:states:us-east-1:123456789012:express:aiwf-dev-orchestrator-express:t-1"
    assert is_express(reserved) and not is_express(MACHINE.replace(":stateMachine:", ":execution:") + ":t-1")
    assert same_execution(reserved, reserved + ":0f6e2a9c-uuid")
    assert not same_execution(reserved, reserved + "0:uuid")  # another task's name that starts alike
    standard = MACHINE.replace(":stateMachine:", ":execution:") + ":t-1"
    assert same_execution(standard, standard) and not same_execution(standard, standard + "-c2")


class FakeStepFunctions:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("an Express execution has no history to read")

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {
            "executionArn": kwargs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{kwargs['name']}"
        }


@pytest.fixture
def sfn(aws_tables: None, monkeypatch: pytest.MonkeyPatch) -> FakeStepFunctions:  # noqa: F811
    fake = FakeStepFunctions()
    monkeypatch.setattr(history_handover, "client", lambda service: fake)
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    get_settings.cache_clear()
    yield fake
    get_settings.cache_clear()


def _express_call(task_id: str, started_seconds_ago: float = 0, **kwargs: Any) -> dict[str, Any]:
    arn = reservation_arn(EXPRESS_MACHINE, task_id) + ":6b1c"
    started = (datetime.now(UTC) - timedelta(seconds=started_seconds_ago)).isoformat().replace("+00:00", "Z")
    return checked(
        process_steps(task_id, lambda: 60_000, execution_arn=arn, rounds=1, execution_start_time=started, **kwargs)
    )


def test_an_inline_flow_runs_to_its_end_on_express_and_records_the_real_arn(sfn) -> None:
    task_id = start(
        flow({"a": {"type": "transform", "value": 1, "resultPath": "v", "next": "b"}, "b": {"type": "succeed"}})
    )
    assert _express_call(task_id)["action"] == Action.SUCCEEDED
    task = TaskRepository().get(task_id)
    assert task.status == "SUCCEEDED" and task.execution_arn == reservation_arn(EXPRESS_MACHINE, task_id) + ":6b1c"
    assert sfn.started == []


def test_a_fork_hands_the_task_over_before_it_begins(sfn) -> None:
    branches = [{"id": "p", **_branch({"x": {"type": "succeed"}})}]
    task_id = start(
        flow(
            {
                "a": {"type": "transform", "value": 1, "resultPath": "v", "next": "fork"},
                "fork": {"type": "parallel", "branches": branches, "next": "b"},
                "b": {"type": "succeed"},
            }
        )
    )
    answer = _express_call(task_id)
    assert answer["action"] == Action.CONTINUED
    assert [(s["stateMachineArn"], s["name"]) for s in sfn.started] == [(MACHINE, f"{task_id}-c2")]
    task = TaskRepository().get(task_id)
    assert task.current_step == "fork" and task.step_state is None  # the fork did not begin: Standard runs it
    assert (
        task.execution_arn
        == answer["executionArn"]
        == MACHINE.replace(":stateMachine:", ":execution:") + f":{task_id}-c2"
    )
    assert task.context["v"] == 1  # the step before it ran once, on Express


def test_a_run_past_its_budget_hands_over_at_its_next_call(sfn, monkeypatch) -> None:
    monkeypatch.setenv("EXPRESS_BUDGET_SECONDS", "60")
    task_id = start(
        flow({"a": {"type": "transform", "value": 1, "resultPath": "v", "next": "b"}, "b": {"type": "succeed"}})
    )
    assert _express_call(task_id, started_seconds_ago=61)["action"] == Action.CONTINUED
    assert TaskRepository().get(task_id).status == "PENDING"  # nothing ran on Express
    assert len(sfn.started) == 1


def test_a_step_retry_that_would_wait_past_the_horizon_goes_on_on_standard(sfn, monkeypatch) -> None:
    monkeypatch.setenv("EXPRESS_RETRY_HORIZON_SECONDS", "240")
    step_handlers.load_handlers()

    def busy(payload: Any, *, task_id: str, step_id: str) -> Any:
        raise StepError("Busy", "try again", retryable=True)

    monkeypatch.setitem(step_handlers.HANDLERS, "unit-busy", busy)
    steps = {
        "a": {
            "type": "task",
            "handler": "unit-busy",
            "retry": {"maxAttempts": 3, "intervalSeconds": 30},
            "next": "b",
        },
        "b": {"type": "succeed"},
    }
    near = start(flow(steps))
    assert _express_call(near, started_seconds_ago=100)["action"] == Action.RETRY  # 100 + 30 < 240: waits on Express
    far = start(flow(steps))
    assert _express_call(far, started_seconds_ago=215)["action"] == Action.CONTINUED  # 215 + 30 >= 240
    assert [s["name"] for s in sfn.started] == [f"{far}-c2"]


def test_finalize_records_a_failure_of_the_run_the_task_reserved(sfn) -> None:
    """Finalize compares executions: the reservation the API recorded matches its run's real ARN."""
    task_id = start(flow({"a": {"type": "succeed"}}))
    TaskRepository().set_execution(TaskRepository().get(task_id), reservation_arn(EXPRESS_MACHINE, task_id))
    error = {"errorName": "States.Runtime", "errorMessage": "boom", "errorDetails": None, "retryable": False}
    real = reservation_arn(EXPRESS_MACHINE, task_id) + ":9a9a"
    assert checked(finalize_failure(task_id, error, real))["action"] == Action.FAILED
    assert TaskRepository().get(task_id).status == "FAILED"


def test_express_run_keeps_what_it_can_finish() -> None:
    run = ExpressRun("arn:aws:states:us-east-1:1:express:m:t:u", None)
    assert run.keeps({"action": Action.PROCESS}) and run.keeps({"action": Action.SUCCEEDED})
    assert not run.keeps({"action": Action.WAIT}) and not run.keeps({"action": Action.PARALLEL})
    assert ExpressRun.of("arn:aws:states:us-east-1:1:execution:m:t", None) is None
