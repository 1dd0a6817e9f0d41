"""The Standard engine's control plane: start, stop, and complete or heartbeat a wait.

A task's Standard executions are named after it (`<taskId>`, `<taskId>-r<n>` for the n-th
redrive, `-c<n>` for a continuation), so Step Functions itself refuses a second execution of a
name, and the ARN is known before the execution starts (settings.standard_execution_arn).

- start: `StartExecution`; a name that exists already (a retried call) answers with its ARN.
- stop: `StopExecution` with the Cancelled error; one that ended (or never started) is left alone.
- resume / heartbeat: `SendTaskSuccess` / `SendTaskFailure` / `SendTaskHeartbeat` with the task
  token the wait's record keeps (the resume token handed out is our own: resume_tokens.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from .aws import client
from .errors import Gone
from .protocol import ErrorName
from .settings import standard_execution_arn

log = logging.getLogger(__name__)
# StopExecution's `cause` limit and SendTaskFailure's (characters).
_CAUSE_LIMIT = 32_768
# What the task-token APIs answer when the wait ended (timed out, completed, execution stopped).
_TOKEN_GONE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")


def start(machine_arn: str, name: str, task_id: str) -> str:
    """Start the task's execution `name` (its ARN also when it exists already: a retried call)."""
    try:
        response = client("stepfunctions").start_execution(
            stateMachineArn=machine_arn, name=name, input=json.dumps({"taskId": task_id, "rounds": 0})
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        execution_arn = standard_execution_arn(name)
        log.info("execution already exists", extra={"taskId": task_id, "executionArn": execution_arn})
        return execution_arn
    log.info("execution started", extra={"taskId": task_id, "executionArn": response["executionArn"]})
    return response["executionArn"]


def stop(execution_arn: str, message: str, task_id: str) -> None:
    """Stop the execution with the Cancelled error; one that ended is left alone."""
    try:
        client("stepfunctions").stop_execution(
            executionArn=execution_arn, error=ErrorName.CANCELLED, cause=message[:_CAUSE_LIMIT]
        )
    except ClientError as exc:
        # An execution that ended meanwhile (or a continuation that never started) has nothing to stop.
        if exc.response["Error"]["Code"] not in ("ExecutionDoesNotExist", "ExecutionNotRunning"):
            raise
        log.info("no running execution to stop", extra={"taskId": task_id, "code": exc.response["Error"]["Code"]})


def complete_wait(task_id: str, token: str, outcome: dict[str, Any]) -> None:
    """Complete the wait's task token: success, or failure with the resume failure error (whose
    outcome the task already holds, so ProcessSteps fails the wait step with it)."""
    sfn = client("stepfunctions")
    try:
        if outcome["status"] == "SUCCEEDED":
            sfn.send_task_success(taskToken=token, output=json.dumps({"taskId": task_id}))
        else:
            cause = json.dumps(outcome["error"])
            sfn.send_task_failure(taskToken=token, error=ErrorName.RESUME_FAILURE, cause=cause[:_CAUSE_LIMIT])
    except ClientError as exc:
        _gone_if_ended(task_id, exc)
        raise


def heartbeat(task_id: str, token: str) -> None:
    """Restart the wait's `heartbeatSeconds` clock (SendTaskHeartbeat)."""
    try:
        client("stepfunctions").send_task_heartbeat(taskToken=token)
    except ClientError as exc:
        _gone_if_ended(task_id, exc)
        raise


def _gone_if_ended(task_id: str, exc: ClientError) -> None:
    if exc.response["Error"]["Code"] in _TOKEN_GONE:
        raise Gone(f"the wait of task {task_id!r} is over: {exc}", code="WAIT_EXPIRED") from exc
