"""The per-task step budget (`maxSteps`) and the size limits of step results and the context.

The step loop runs for real (aiwf.runner.process_steps) on moto's DynamoDB and S3 in process;
the state machine's part (Route, the Map over branches) is played by `drive` (state_machine.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from aiwf import runtime_limits
from aiwf.callers import Caller
from aiwf.flows import validation_errors
from aiwf.handlers.graphql import get_state
from aiwf.repository import TaskRepository
from aiwf.runner import process_steps
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import drive, start

pytestmark = pytest.mark.usefixtures("aws_tables")


def endless_loop(max_steps: int | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": f"loop-{uuid.uuid4().hex[:8]}",
        "startAt": "count",
        "steps": {
            "count": {"type": "transform", "value": "{{ (n | default(0)) + 1 }}", "resultPath": "n", "next": "again"},
            "again": {"type": "choice", "choices": [{"path": "n", "lessThan": 0, "next": "done"}], "default": "count"},
            "done": {"type": "succeed"},
        },
    }
    if max_steps is not None:
        document["maxSteps"] = max_steps
    return document


def test_a_choice_loop_that_never_ends_fails_with_step_limit_exceeded():
    task_id = start(endless_loop(max_steps=30))

    answer = drive(task_id)

    task = TaskRepository().get(task_id)
    assert answer["action"] == "FAILED" and task.status == "FAILED"
    assert task.error["errorName"] == "StepLimitExceeded"
    assert task.error["stepId"] == "count"  # the step it would have run next
    assert "30" in task.error["errorMessage"] and "maxSteps" in task.error["errorMessage"]
    assert task.error["errorDetails"] == {"maxSteps": 30, "stepsRun": 30}
    assert task.context["n"] == 15  # 15 rounds of count + again


def test_the_budget_is_counted_in_the_task_record_across_invocations():
    task_id = start(endless_loop(max_steps=30))

    first = process_steps(task_id, lambda: 60_000, 7)  # one invocation of 7 steps, then hand over

    assert first["action"] == "PROCESS"
    assert TaskRepository().get(task_id).steps_run == 7
    answer = drive(task_id, per_invocation=7)  # later invocations (or a fresh execution) go on counting
    assert answer["error"]["errorName"] == "StepLimitExceeded"
    assert TaskRepository().get(task_id).steps_run == 30


def test_the_counter_is_private_to_the_backend():
    task_id = start(endless_loop(max_steps=4))
    drive(task_id)
    repo = TaskRepository()
    assert "stepsRun" not in repo.get(task_id).state()
    assert all("stepsRun" not in state for state in repo.history(task_id))
    assert "stepsRun" not in get_state(task_id, Caller.operator())  # what GraphQL and the subscription show


def test_a_flow_that_ends_within_its_budget_succeeds():
    document = {
        "id": f"short-{uuid.uuid4().hex[:8]}",
        "startAt": "a",
        "maxSteps": 3,
        "steps": {
            "a": {"type": "transform", "value": 1, "resultPath": "a", "next": "b"},
            "b": {"type": "transform", "value": 2, "resultPath": "b", "next": "done"},
            "done": {"type": "succeed"},
        },
    }
    task_id = start(document)
    assert drive(task_id)["action"] == "SUCCEEDED"
    assert TaskRepository().get(task_id).steps_run == 3


def test_default_and_cap():
    assert runtime_limits.max_steps({}) == runtime_limits.DEFAULT_MAX_STEPS == 10_000
    assert runtime_limits.max_steps({"maxSteps": 50}) == 50
    assert runtime_limits.max_steps({"maxSteps": 10**9}) == runtime_limits.MAX_STEPS_CAP == 100_000


@pytest.mark.parametrize(("value", "valid"), [(1, True), (100_000, True), (0, False), (100_001, False), ("9", False)])
def test_the_schema_bounds_max_steps(value, valid):
    document = {**endless_loop(), "maxSteps": value}
    assert (validation_errors(document) == []) is valid


def parallel_flow(max_steps: int, branch_steps: dict[str, Any]) -> dict[str, Any]:
    branch = {"startAt": "b1", "steps": branch_steps}
    return {
        "id": f"par-{uuid.uuid4().hex[:8]}",
        "startAt": "a",
        "maxSteps": max_steps,
        "steps": {
            "a": {"type": "transform", "value": 1, "resultPath": "a", "next": "fan"},
            "fan": {
                "type": "parallel",
                "onBranchError": "continue",
                "branches": [{"id": "x", **branch}, {"id": "y", **branch}],
                "resultPath": "fan",
                "next": "after",
            },
            "after": {"type": "transform", "value": 2, "resultPath": "after", "next": "done"},
            "done": {"type": "succeed"},
        },
    }


def test_branch_steps_count_against_the_task_budget():
    three_steps = {
        "b1": {"type": "transform", "value": 1, "resultPath": "b1", "next": "b2"},
        "b2": {"type": "transform", "value": 2, "resultPath": "b2", "next": "end"},
        "end": {"type": "succeed", "outputPath": "b2"},
    }
    # a (1) + fan (1) + two branches of 3 steps = 8 steps; `after` would be the 9th
    task_id = start(parallel_flow(8, three_steps))

    answer = drive(task_id)

    task = TaskRepository().get(task_id)
    assert answer["action"] == "FAILED", answer
    assert task.context["fan"] == [{"branchId": "x", "output": 2}, {"branchId": "y", "output": 2}]
    assert task.error["errorName"] == "StepLimitExceeded" and task.error["stepId"] == "after"
    assert task.steps_run == 8


def test_a_runaway_branch_fails_with_the_task_budget():
    loop = {
        "b1": {"type": "transform", "value": "{{ (n | default(0)) + 1 }}", "resultPath": "n", "next": "b2"},
        "b2": {"type": "choice", "choices": [{"path": "n", "lessThan": 0, "next": "end"}], "default": "b1"},
        "end": {"type": "succeed"},
    }
    task_id = start(parallel_flow(20, loop))

    answer = drive(task_id)

    results = TaskRepository().get(task_id).context["fan"]
    errors = [result["error"] for result in results]
    assert [e["errorName"] for e in errors] == ["StepLimitExceeded", "StepLimitExceeded"]
    assert [e["branchId"] for e in errors] == ["x", "y"]
    # each branch counted on from the task's 1 step before the fork
    assert all(e["errorDetails"] == {"maxSteps": 20, "stepsRun": 20} for e in errors)
    assert answer["error"]["errorName"] == "StepLimitExceeded" and answer["error"]["stepId"] == "after"


def writer_flow(steps: int, catch: bool = False) -> dict[str, Any]:
    """`steps` transforms, each writing the input's `blob` at its own path."""
    chain: dict[str, Any] = {}
    for index in range(steps):
        chain[f"w{index}"] = {
            "type": "transform",
            "value": "{{ input.blob }}",
            "resultPath": f"r{index}",
            "next": f"w{index + 1}" if index + 1 < steps else "done",
        }
    if catch:
        chain["w0"]["catch"] = "caught"
        chain["caught"] = {"type": "succeed", "outputPath": "error"}
    chain["done"] = {"type": "succeed", "outputPath": "r0"}
    return {"id": f"big-{uuid.uuid4().hex[:8]}", "startAt": "w0", "steps": chain}


def test_a_result_over_the_limit_fails_the_step(monkeypatch):
    monkeypatch.setattr(runtime_limits, "RESULT_MAX_BYTES", 1_000)
    task_id = start(writer_flow(1), {"blob": "x" * 2_000})

    answer = drive(task_id)

    error = answer["error"]
    assert error["errorName"] == "ResultTooLarge" and error["stepId"] == "w0"
    assert "1000 bytes" in error["errorMessage"]
    assert "r0" not in TaskRepository().get(task_id).context  # nothing of it was committed


def test_a_context_over_the_limit_fails_the_step_that_would_grow_it(monkeypatch):
    monkeypatch.setattr(runtime_limits, "CONTEXT_MAX_BYTES", 10_000)
    task_id = start(writer_flow(6), {"blob": "x" * 2_000})  # the input, then 2 KB more per step

    answer = drive(task_id)

    error = answer["error"]
    assert error["errorName"] == "ContextTooLarge" and error["stepId"] == "w3"
    assert "10000 bytes" in error["errorMessage"]


def test_size_errors_are_step_errors_a_catch_handles(monkeypatch):
    monkeypatch.setattr(runtime_limits, "RESULT_MAX_BYTES", 1_000)
    task_id = start(writer_flow(1, catch=True), {"blob": "x" * 2_000})

    answer = drive(task_id)

    assert answer["action"] == "SUCCEEDED"
    assert TaskRepository().get(task_id).output["errorName"] == "ResultTooLarge"
