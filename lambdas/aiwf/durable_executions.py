"""The durable engine's control plane: start, stop, and complete or heartbeat a wait.

The task API, cancel, redrive, resume and heartbeat call the engine a task runs on (aiwf.engines
picks it); a task's `executionArn` says which (a durable execution's ARN names a function and `durable-execution`,
a Step Functions one `:execution:`), so no separate field is needed and a task keeps its engine
for life, whatever its flow's `engine` becomes later.

- start: an asynchronous `Invoke` of the durable function's qualified version (durable functions
  refuse an unqualified ARN) with `DurableExecutionName` derived from the task id: Lambda starts
  at most one execution per name, so a retried start finds the one it started.
- stop: `StopDurableExecution` with the Cancelled error, as StopExecution is called.
- resume / heartbeat: `SendDurableExecutionCallbackSuccess` / `...Failure` / `...Heartbeat` with
  the callback id the wait's record keeps (the resume token handed out is our own: resume_tokens.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from . import settings
from .aws import client
from .errors import Conflict, Gone
from .protocol import ErrorName

log = logging.getLogger(__name__)

# The error and message limits of the durable APIs' ErrorObject are those of SendTaskFailure.
_MESSAGE_LIMIT = 32_768
# What the callback APIs answer when the callback ended (timed out, completed, execution stopped).
_CALLBACK_GONE = ("ResourceNotFoundException", "CallbackTimeoutException", "InvalidParameterValueException")


def is_durable(execution_arn: str | None) -> bool:
    """True when the task's execution is a durable execution (else Step Functions, or none yet)."""
    return bool(execution_arn) and "/durable-execution/" in str(execution_arn)


def durable_function_arn() -> str:
    """The qualified ARN (a published version) of the durable orchestrator; empty when not deployed."""
    return settings.durable_function_arn()


def default_engine() -> str:
    """The stage's `defaultEngine` (infra/config.py), for flows that do not name one."""
    return settings.default_engine()


def engine_of(document: dict[str, Any]) -> str:
    """The engine a flow document runs on: its own `engine`, or the stage's default."""
    return document.get("engine") or default_engine()


def execution_name(task_id: str, redrive_count: int = 0) -> str:
    """The durable execution's name: the task id, `-r<n>` for the n-th redrive (as on Step Functions)."""
    return f"{task_id}-r{redrive_count}" if redrive_count else task_id


def start(task_id: str, name: str) -> str:
    """Start (or find, by name) the durable execution that runs `task_id`; its ARN."""
    function_arn = durable_function_arn()
    if not function_arn:
        raise Conflict(
            "this flow runs on the durable engine, which this stage does not deploy", code="ENGINE_NOT_DEPLOYED"
        )
    response = client("lambda").invoke(
        FunctionName=function_arn,
        InvocationType="Event",
        DurableExecutionName=name,
        Payload=json.dumps({"taskId": task_id}).encode(),
    )
    execution_arn = response["DurableExecutionArn"]
    log.info("durable execution started", extra={"taskId": task_id, "executionArn": execution_arn})
    return execution_arn


def stop(execution_arn: str, message: str) -> None:
    """Stop a durable execution with the Cancelled error; one that ended already is left alone."""
    try:
        client("lambda").stop_durable_execution(
            DurableExecutionArn=execution_arn,
            Error={"ErrorType": ErrorName.CANCELLED, "ErrorMessage": message[:_MESSAGE_LIMIT]},
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code not in ("ResourceNotFoundException", "IllegalStateException", "ExecutionConflictException"):
            raise
        log.info("no running durable execution to stop", extra={"executionArn": execution_arn, "code": code})


def complete_wait(task_id: str, callback_id: str, outcome: dict[str, Any]) -> None:
    """Complete the wait's callback: success, or failure with the resume failure error (whose
    outcome the task already holds, so the engine's next step fails the wait step with it)."""
    lam = client("lambda")
    try:
        if outcome["status"] == "SUCCEEDED":
            lam.send_durable_execution_callback_success(
                CallbackId=callback_id, Result=json.dumps({"taskId": task_id}).encode()
            )
        else:
            lam.send_durable_execution_callback_failure(
                CallbackId=callback_id,
                Error={
                    "ErrorType": ErrorName.RESUME_FAILURE,
                    "ErrorMessage": json.dumps(outcome["error"])[:_MESSAGE_LIMIT],
                },
            )
    except ClientError as exc:
        _gone_if_ended(task_id, exc)
        raise


def heartbeat(task_id: str, callback_id: str) -> None:
    """Restart the wait's heartbeat clock (SendDurableExecutionCallbackHeartbeat)."""
    try:
        client("lambda").send_durable_execution_callback_heartbeat(CallbackId=callback_id)
    except ClientError as exc:
        _gone_if_ended(task_id, exc)
        raise


def _gone_if_ended(task_id: str, exc: ClientError) -> None:
    if exc.response["Error"]["Code"] in _CALLBACK_GONE:
        raise Gone(f"the wait of task {task_id!r} is over: {exc}", code="WAIT_EXPIRED") from exc
