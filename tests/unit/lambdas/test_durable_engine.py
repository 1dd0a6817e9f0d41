"""The durable engine's pure parts: which engine a task is on, and which faults its steps retry."""

from __future__ import annotations

import json

import pytest
from aws_durable_execution_sdk_python.exceptions import StepError

from aiwf import durable_executions
from aiwf.durable_engine import ENDS, FAULT_RETRIES, NOT_ROUTED, ROUTES, EngineFailure, _fault_retry, _normalized
from aiwf.protocol import Action

DURABLE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:aiwf-dev-durable-orchestrator:1/durable-execution/t-1/abc"
SFN_ARN = "arn:aws:states:us-east-1:123456789012:execution:aiwf-dev-orchestrator:t-1"


@pytest.mark.parametrize(("arn", "durable"), [(DURABLE_ARN, True), (SFN_ARN, False), (None, False), ("", False)])
def test_a_tasks_execution_arn_says_its_engine(arn, durable):
    assert durable_executions.is_durable(arn) is durable


def test_a_flow_names_its_engine_or_takes_the_stages_default(monkeypatch):
    monkeypatch.delenv("DEFAULT_ENGINE", raising=False)
    assert durable_executions.engine_of({}) == "stepfunctions"
    assert durable_executions.engine_of({"engine": "durable"}) == "durable"
    monkeypatch.setenv("DEFAULT_ENGINE", "durable")
    assert durable_executions.engine_of({}) == "durable"
    assert durable_executions.engine_of({"engine": "stepfunctions"}) == "stepfunctions"
    monkeypatch.setenv("DEFAULT_ENGINE", "nonsense")
    assert durable_executions.engine_of({}) == "stepfunctions"


def test_execution_names_follow_the_step_functions_engines():
    assert durable_executions.execution_name("t-1") == "t-1"
    assert durable_executions.execution_name("t-1", 2) == "t-1-r2"


def test_starting_without_the_durable_function_is_a_conflict(monkeypatch):
    monkeypatch.delenv("DURABLE_FUNCTION_ARN", raising=False)
    with pytest.raises(durable_executions.Conflict) as raised:
        durable_executions.start("t-1", "t-1")
    assert raised.value.code == "ENGINE_NOT_DEPLOYED"


@pytest.mark.parametrize("name", ["aiwf.errors.ConcurrentUpdate", "ConcurrentUpdate", "Runtime.ExitError"])
def test_invocation_faults_are_retried_with_backoff_then_given_up(name):
    fault = StepError("lost a race", error_type=name)
    delays = [_fault_retry(fault, attempt) for attempt in range(1, FAULT_RETRIES + 2)]
    assert [d.should_retry for d in delays] == [True] * FAULT_RETRIES + [False]
    assert [d.delay_seconds for d in delays[:FAULT_RETRIES]] == [2, 4, 8]


def test_step_errors_are_not_retried_by_the_engine():
    assert not _fault_retry(StepError("no flow", error_type="StepError"), 1).should_retry
    assert not _fault_retry(ValueError("bug"), 1).should_retry


def test_a_failure_outside_a_step_gets_the_normalized_shape():
    error = _normalized(StepError("task t-1 does not exist", error_type="aiwf.errors.StepError"))
    assert error == {
        "errorName": "StepError",
        "errorMessage": "task t-1 does not exist",
        "errorDetails": {"errorType": "StepError", "errorMessage": "task t-1 does not exist"},
        "retryable": False,
        "stepId": None,
        "branchId": None,
    }


def test_a_failed_task_fails_its_execution_with_the_tasks_error():
    error = {"errorName": "NoName", "errorMessage": "Cannot greet nobody", "stepId": "reject"}
    failure = EngineFailure(error)
    assert failure.message == "NoName: Cannot greet nobody"
    assert json.loads(failure.data or "") == error


def test_every_action_of_the_protocol_is_routed_or_ends_the_task():
    """An action added to schema/orchestrator.json needs its durable counterpart, as it needs a state."""
    assert set(ROUTES) | ENDS | NOT_ROUTED == set(Action)
    assert not set(ROUTES) & (ENDS | NOT_ROUTED)
