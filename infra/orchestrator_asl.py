"""The orchestrator state machine, as a pure function of the ARNs it needs (no Pulumi types).

The same definition is deployed, unit-tested and executed on the local engine. Read it top to
bottom: ProcessSteps runs inline steps and answers with an `action`; Route follows it; every
failure that escapes a Lambda goes through one normalization chain into the task's error shape.
What the state machine shares with the runtime (actions and where Route sends each, modes, error
names) comes from `schema/orchestrator.json`, which the runtime loads too (lambdas/aiwf/protocol.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROTOCOL_PATH = Path(__file__).resolve().parent.parent / "schema" / "orchestrator.json"
PROTOCOL: dict[str, Any] = json.loads(PROTOCOL_PATH.read_text())


def _entries(section: str) -> dict[str, Any]:
    """One section of the protocol without its `$comment`s."""
    return {key: value for key, value in PROTOCOL[section].items() if not key.startswith("$")}


ACTIONS: dict[str, dict[str, Any]] = _entries("actions")
MODES: dict[str, str] = _entries("modes")
ERRORS: dict[str, str] = {key: entry["name"] for key, entry in _entries("errors").items()}

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# An invocation that died or lost a race rather than failed (the protocol's `invocationFault`
# errors): the function timed out, its process exited, or another invocation of the same task
# committed first (the repository's conditional write on `seq`). Every handler re-reads the task
# and goes on from its last committed change, so running the invocation again is safe; only when
# these retries are spent is the error normalized.
INVOCATION_FAULTS = [entry["name"] for entry in _entries("errors").values() if entry.get("invocationFault")]
# Errors a caller may retry later with a fair chance of success.
RETRYABLE_ERRORS = [*LAMBDA_SERVICE_ERRORS, "States.Timeout", "States.HeartbeatTimeout", ERRORS["SANDBOX_TIMEDOUT"]]


def _lambda_retry() -> list[dict[str, Any]]:
    return [
        {
            "ErrorEquals": LAMBDA_SERVICE_ERRORS,
            "IntervalSeconds": 1,
            "MaxAttempts": 4,
            "BackoffRate": 2.0,
            "JitterStrategy": "FULL",
        },
        {
            "ErrorEquals": INVOCATION_FAULTS,
            "IntervalSeconds": 2,
            "MaxAttempts": 3,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 30,
            "JitterStrategy": "FULL",
        },
    ]


def _lambda_task(function_arn: str, payload: dict[str, Any], next_state: str) -> dict[str, Any]:
    """A Lambda invoke whose whole output becomes the state; retried on Lambda service errors."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload": payload},
        "OutputPath": "$.Payload",
        "Retry": _lambda_retry(),
        "Next": next_state,
    }


# PUT /tasks/{id} with status FAILED completes the token with this error; ProcessSteps then
# fails the wait step with the caller's error, so the step's `catch` applies.
RESUME_FAILURE_ERROR = ERRORS["RESUME_FAILURE"]


def _wait_for_event(process_steps_arn: str, *, heartbeat: bool, prefix: str = "") -> dict[str, Any]:
    """Park the task on a task token until PUT /tasks/{id} (or the wait's timeout) completes it.

    The Lambda (the process function in `registerWait` mode) keeps the task token on the task
    record and tells the external system a resume token of its own (never this one, so neither
    the history nor execution-data logs hold what resumes the task); timeouts come from the step
    via the Route input.
    """
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": process_steps_arn,
            "Payload": {
                "mode": MODES["REGISTER_WAIT"],
                "taskId.$": "$.taskId",
                "stepId.$": "$.stepId",
                "taskToken.$": "$$.Task.Token",
            },
        },
        "TimeoutSecondsPath": "$.timeoutSeconds",
        "ResultPath": None,
        "Retry": _lambda_retry(),
        "Catch": [
            {"ErrorEquals": [RESUME_FAILURE_ERROR], "ResultPath": None, "Next": f"{prefix}ProcessSteps"},
            *_catch_into_normalizer(prefix),
        ],
        "Next": f"{prefix}ProcessSteps",
    }
    if heartbeat:
        state["HeartbeatSecondsPath"] = "$.heartbeatSeconds"
    return state


def _catch_into_normalizer(prefix: str = "") -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": f"{prefix}NormalizeError"}]


def _normalize_error_chain(next_state: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Turn `$.caught` ({Error, Cause}) into `$.error`, the one normalized error shape.

    Cause kinds: a Lambda runtime error (JSON with errorType/errorMessage/stackTrace), an error
    our own code already normalized (JSON with errorName), a Step Functions error with a text
    cause (States.Timeout, States.TaskFailed, data limit), or no cause at all.
    """

    def normalized(message: str, details: str | None) -> dict[str, Any]:
        return {
            "taskId.$": "$.taskId",
            "error": {
                "errorName.$": "$.caught.Error",
                "errorMessage.$": message,
                **({"errorDetails.$": details} if details else {"errorDetails": None}),
                "retryable": False,
                "stepId": None,
                "branchId": None,
            },
        }

    return {
        f"{prefix}NormalizeError": {
            "Type": "Choice",
            "Comment": "Which kind of cause did the failure carry?",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.caught.Cause", "IsPresent": True},
                        {"Variable": "$.caught.Cause", "IsString": True},
                        {"Variable": "$.caught.Cause", "StringMatches": "{*}"},
                    ],
                    "Next": f"{prefix}ParseErrorCause",
                },
                {
                    "And": [
                        {"Variable": "$.caught.Cause", "IsPresent": True},
                        {"Variable": "$.caught.Cause", "IsString": True},
                    ],
                    "Next": f"{prefix}NormalizeTextCause",
                },
            ],
            "Default": f"{prefix}NormalizeBareError",
        },
        f"{prefix}ParseErrorCause": {
            "Type": "Pass",
            "Parameters": {
                "taskId.$": "$.taskId",
                "caught.$": "$.caught",
                "parsed.$": "States.StringToJson($.caught.Cause)",
            },
            "Next": f"{prefix}ClassifyParsedCause",
        },
        f"{prefix}ClassifyParsedCause": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.parsed.errorName", "IsPresent": True},
                        {"Variable": "$.parsed.errorMessage", "IsPresent": True},
                    ],
                    "Next": f"{prefix}KeepNormalizedError",
                },
                {"Variable": "$.parsed.errorMessage", "IsPresent": True, "Next": f"{prefix}NormalizeLambdaError"},
            ],
            "Default": f"{prefix}NormalizeJsonCause",
        },
        f"{prefix}KeepNormalizedError": {
            "Type": "Pass",
            "Parameters": {"taskId.$": "$.taskId", "caught.$": "$.caught", "error.$": "$.parsed"},
            "Next": f"{prefix}MarkRetryable",
        },
        f"{prefix}NormalizeLambdaError": {
            "Type": "Pass",
            "Comment": "Lambda runtime error: {errorType, errorMessage, stackTrace}",
            "Parameters": {**normalized("$.parsed.errorMessage", "$.parsed"), "caught.$": "$.caught"},
            "Next": f"{prefix}MarkRetryable",
        },
        f"{prefix}NormalizeJsonCause": {
            "Type": "Pass",
            "Parameters": {**normalized("$.caught.Cause", "$.parsed"), "caught.$": "$.caught"},
            "Next": f"{prefix}MarkRetryable",
        },
        f"{prefix}NormalizeTextCause": {
            "Type": "Pass",
            "Comment": "Step Functions error or a bare string cause",
            "Parameters": {**normalized("$.caught.Cause", None), "caught.$": "$.caught"},
            "Next": f"{prefix}MarkRetryable",
        },
        f"{prefix}NormalizeBareError": {
            "Type": "Pass",
            "Comment": "An error without a cause: its name is all we know",
            "Parameters": {**normalized("$.caught.Error", None), "caught.$": "$.caught"},
            "Next": f"{prefix}MarkRetryable",
        },
        f"{prefix}MarkRetryable": {
            "Type": "Choice",
            "Choices": [
                {
                    "Or": [{"Variable": "$.caught.Error", "StringEquals": name} for name in RETRYABLE_ERRORS],
                    "Next": f"{prefix}SetRetryable",
                }
            ],
            "Default": next_state,
        },
        f"{prefix}SetRetryable": {
            "Type": "Pass",
            "Result": True,
            "ResultPath": "$.error.retryable",
            "Next": next_state,
        },
    }


def route_choices(prefix: str, in_branch: bool, express: bool = False) -> list[dict[str, Any]]:
    """Route's choices, one per protocol action (its `state`, or `branchState` inside a branch).

    An action with a `stateWhenPresent` field first routes to that state when its answer carries
    the field (WAIT with a heartbeat). Actions a branch never answers have no branch choice, and
    the Express machine has no choice for the actions the protocol keeps off it (`express`).
    """
    choices: list[dict[str, Any]] = []
    for action, spec in ACTIONS.items():
        target = spec["branchState"] if in_branch else spec["state"]
        if target is None or (express and not spec["express"]):
            continue
        for field, variant in spec.get("stateWhenPresent", {}).items():
            condition = [
                {"Variable": "$.action", "StringEquals": action},
                {"Variable": f"$.{field}", "IsPresent": True},
            ]
            choices.append({"And": condition, "Next": f"{prefix}{variant}"})
        choices.append({"Variable": "$.action", "StringEquals": action, "Next": f"{prefix}{target}"})
    return choices


def _step_loop(
    process_steps_arn: str, prefix: str, in_branch: bool, express: bool = False
) -> dict[str, dict[str, Any]]:
    """ProcessSteps -> Route -> (WaitForEvent | PollWait -> PollCheck | RetryWait | ...) -> back, with `prefix`.

    The task loop and each parallel branch run this same loop; Route's choices come from the
    protocol (`route_choices`): in a branch SUCCEEDED/FAILED end the iteration, and PARALLEL and
    CONTINUED never come. The Express loop has no wait and no poll states.
    """
    payload = {"taskId.$": "$.taskId", "executionArn.$": "$$.Execution.Id", "rounds.$": "$.rounds"}
    if express:  # how long this run has been going: it hands over well before Express's five minutes
        payload["executionStartTime.$"] = "$$.Execution.StartTime"
    process_steps = _lambda_task(process_steps_arn, payload, f"{prefix}Route")
    process_steps["Catch"] = _catch_into_normalizer(prefix)
    poll_check = _lambda_task(
        process_steps_arn,
        {
            "mode": MODES["POLL_CHECK"],
            "taskId.$": "$.taskId",
            "executionArn.$": "$$.Execution.Id",
            "rounds.$": "$.rounds",
        },
        f"{prefix}Route",
    )
    poll_check["Catch"] = _catch_into_normalizer(prefix)
    states: dict[str, dict[str, Any]] = {
        f"{prefix}ProcessSteps": process_steps,
        f"{prefix}Route": {
            "Type": "Choice",
            "Choices": route_choices(prefix, in_branch, express),
            "Default": f"{prefix}UnknownAction",
        },
        f"{prefix}WaitForEvent": _wait_for_event(process_steps_arn, heartbeat=False, prefix=prefix),
        f"{prefix}WaitForEventWithHeartbeat": _wait_for_event(process_steps_arn, heartbeat=True, prefix=prefix),
        f"{prefix}PollWait": {
            "Type": "Wait",
            "Comment": "Between poll checks the state machine waits; no Lambda sleeps",
            "SecondsPath": "$.seconds",
            "Next": f"{prefix}PollCheck",
        },
        f"{prefix}PollCheck": poll_check,
        f"{prefix}RetryWait": {
            "Type": "Wait",
            "Comment": "A step-declared retry waits here, then the step runs again",
            "SecondsPath": "$.seconds",
            "Next": f"{prefix}ProcessSteps",
        },
        f"{prefix}UnknownAction": {
            "Type": "Pass",
            "Parameters": {
                "taskId.$": "$.taskId",
                "caught": {"Error": ERRORS["UNKNOWN_ACTION"], "Cause.$": "States.JsonToString($)"},
            },
            "Next": f"{prefix}NormalizeError",
        },
    }
    if express:  # Express workflows support no callback tasks; polls can outlive their five minutes
        for state in ("WaitForEvent", "WaitForEventWithHeartbeat", "PollWait", "PollCheck"):
            del states[f"{prefix}{state}"]
    return states


def _branches(process_steps_arn: str, finalize_arn: str) -> dict[str, Any]:
    """PARALLEL: an inline Map whose iterations each run the step loop on one branch record.

    The items are branch record ids (claim checks); each branch's outcome is written to its own
    record, so iterations end in a Pass whatever happened and ProcessSteps aggregates after.
    """
    iterator = {
        **_step_loop(process_steps_arn, "Branch", in_branch=True),
        **_normalize_error_chain(next_state="BranchFinalize", prefix="Branch"),
        "BranchFinalize": _lambda_task(finalize_arn, {"taskId.$": "$.taskId", "error.$": "$.error"}, "BranchEnd"),
        "BranchEnd": {"Type": "Pass", "Parameters": {"taskId.$": "$.taskId"}, "End": True},
    }
    return {
        "Type": "Map",
        "ItemsPath": "$.branches",
        "ItemSelector": {"taskId.$": "$$.Map.Item.Value", "rounds": 0},
        "MaxConcurrencyPath": "$.maxConcurrency",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "BranchProcessSteps",
            "States": iterator,
        },
        "ResultPath": None,
        "Catch": _catch_into_normalizer(),
        "Next": "ProcessSteps",
    }


def build_orchestrator_definition(
    process_steps_arn: str, finalize_arn: str, *, express: bool = False
) -> dict[str, Any]:
    """The orchestrator's ASL document for the given Lambda ARNs.

    `express`: the same loop for the Express machine that runs quick runs (StartSyncExecution),
    without the states of the actions the protocol keeps off it (waits, polls, the branch Map):
    ProcessSteps answers CONTINUED there and a Standard execution takes the task over.
    """
    finalize = _lambda_task(
        finalize_arn,
        {"taskId.$": "$.taskId", "error.$": "$.error", "executionArn.$": "$$.Execution.Id"},
        "PickFailure",
    )
    branches = {} if express else {"Branches": _branches(process_steps_arn, finalize_arn)}
    return {
        "Comment": "AI workflow orchestrator: runs any flow document, inline steps batched per invocation."
        + (" Express variant for quick runs." if express else ""),
        "StartAt": "ProcessSteps",
        "States": {
            **_step_loop(process_steps_arn, "", in_branch=False, express=express),
            **branches,
            "Continued": {
                "Type": "Succeed",
                "Comment": "A fresh execution has the task (near the history quota, or handed over from Express)",
            },
            **_normalize_error_chain(next_state="Finalize"),
            "Finalize": finalize,
            "Done": {"Type": "Succeed"},
            "PickFailure": {
                "Type": "Choice",
                "Comment": "A Fail state may not raise names in the reserved States. namespace",
                "Choices": [{"Variable": "$.error.errorName", "StringMatches": "States.*", "Next": "FailedByService"}],
                "Default": "Failed",
            },
            "Failed": {
                "Type": "Fail",
                "ErrorPath": "$.error.errorName",
                "CausePath": "States.JsonToString($.error)",
            },
            "FailedByService": {
                "Type": "Fail",
                "Error": ERRORS["SERVICE_ERROR"],
                "CausePath": "States.JsonToString($.error)",
            },
        },
    }
