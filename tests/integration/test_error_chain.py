"""The normalization chain of the real orchestrator definition, executed by moto's ASL engine.

ProcessSteps is swapped for a Pass that hands the chain a caught {Error, Cause} exactly as a Catch
would, and Finalize for a Pass, so each kind of cause can be produced without Lambda; every
other state is the deployed definition's own. The machines run on the local stack's engine:
moto's backends are process-global, so an in-process `mock_aws` here would wipe the stack that
the other tests of this package share.
"""

from __future__ import annotations

import json
import time

import pytest

from infra.orchestrator_asl import build_orchestrator_definition

LAMBDA_CAUSE = json.dumps({"errorType": "KeyError", "errorMessage": "'doc'", "stackTrace": ['  File "x.py", line 1']})
OWN_CAUSE = json.dumps(
    {
        "errorName": "PollTimeout",
        "errorMessage": "gave up",
        "errorDetails": {"attempts": 3},
        "retryable": False,
        "stepId": "report",
        "branchId": None,
    }
)


def _definition_failing_with(error: str, cause: str | None) -> dict:
    definition = build_orchestrator_definition(
        "arn:aws:lambda:us-east-1:123456789012:function:p", "arn:aws:lambda:us-east-1:123456789012:function:f"
    )
    catch = definition["States"]["ProcessSteps"]["Catch"][0]
    definition["States"]["ProcessSteps"] = {
        "Type": "Pass",
        "Result": {"Error": error, **({"Cause": cause} if cause is not None else {})},
        "ResultPath": catch["ResultPath"],
        "Next": catch["Next"],
    }
    definition["States"]["Finalize"] = {"Type": "Pass", "Next": definition["States"]["Finalize"]["Next"]}
    return definition


@pytest.fixture
def sfn(stack):
    return stack.client("stepfunctions")


def _run(sfn, definition: dict) -> dict:
    arn = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"taskId": "t-1"}))["executionArn"]
    for _ in range(200):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError("execution did not finish")


@pytest.mark.parametrize(
    ("error", "cause", "expected"),
    [
        pytest.param(
            "KeyError",
            LAMBDA_CAUSE,
            {"errorName": "KeyError", "errorMessage": "'doc'", "retryable": False},
            id="lambda-runtime-error",
        ),
        pytest.param(
            "PollTimeout",
            OWN_CAUSE,
            {"errorName": "PollTimeout", "errorMessage": "gave up", "stepId": "report"},
            id="already-normalized",
        ),
        pytest.param(
            "States.Timeout",
            "State timed out after 3 seconds",
            {
                "errorName": "States.Timeout",
                "errorMessage": "State timed out after 3 seconds",
                "retryable": True,
            },
            id="step-functions-error",
        ),
        pytest.param(
            "States.DataLimitExceeded",
            "The state/task returned a result with a size exceeding the maximum number of bytes service limit.",
            {"errorName": "States.DataLimitExceeded", "retryable": False},
            id="data-limit",
        ),
        pytest.param(
            "Rejected",
            None,
            {"errorName": "Rejected", "errorMessage": "Rejected", "errorDetails": None},
            id="bare",
        ),
    ],
)
def test_every_cause_kind_becomes_one_error_shape(sfn, error, cause, expected):
    described = _run(sfn, _definition_failing_with(error, cause))

    assert described["status"] == "FAILED"
    error = json.loads(described["cause"])
    assert set(error) == {"errorName", "errorMessage", "errorDetails", "retryable", "stepId", "branchId"}
    assert {key: error[key] for key in expected} == expected
    reserved = expected["errorName"].startswith("States.")
    assert described["error"] == ("Workflow.ServiceError" if reserved else expected["errorName"])


def test_lambda_error_keeps_type_and_stack_in_details(sfn):
    definition = _definition_failing_with("KeyError", LAMBDA_CAUSE)
    definition["States"]["Finalize"] = {"Type": "Succeed"}  # expose the normalized error as output

    described = _run(sfn, definition)

    error = json.loads(described["output"])["error"]
    assert set(error) == {"errorName", "errorMessage", "errorDetails", "retryable", "stepId", "branchId"}
    assert error["errorDetails"]["errorType"] == "KeyError"
    assert error["errorDetails"]["stackTrace"] == ['  File "x.py", line 1']
