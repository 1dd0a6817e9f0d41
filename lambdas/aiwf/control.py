"""Cancel: an operator or client stops a task in any non-final state (POST /tasks/{id}/cancel).

The task's record is the source of truth, so the ABORTED state is committed first, conditional on
the `seq` read (a cancel racing a resume or a step: one of them wins, the other sees the change and
either retries on the new state or fails with 409). The commit clears the resume-token hash, so a
later resume with the old token is 409. Then the execution is stopped (parallel branches are
inline Map iterations of the same execution, so one StopExecution ends them); a step still running
in a Lambda at that moment cannot commit after ABORTED (its conditional write loses), and any call
ProcessSteps or PollCheck still gets answers "already final". Branch records still open are closed
ABORTED too, so every record of the task tells the same end; a branch record's id (the `taskId` a
wait inside a branch notifies) cancels its task.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from .aws import client
from .errors import ConcurrentUpdate, Conflict, NotFound, normalized_error
from .protocol import ErrorName, StepStateKind
from .repository import Task, TaskRepository

log = logging.getLogger(__name__)
_ATTEMPTS = 5
DEFAULT_REASON = "cancelled by request"
# StopExecution's `cause` limit (characters).
_STOP_CAUSE_LIMIT = 32_768


def cancel_task(task_id: str, reason: str | None) -> tuple[Task, bool]:
    """End `task_id` ABORTED with the Cancelled error; True if this call ended it, False if it was
    ABORTED already. NotFound for an unknown task, Conflict ALREADY_FINAL for another end."""
    repo = TaskRepository()
    message = reason or DEFAULT_REASON
    for _ in range(_ATTEMPTS):
        task = repo.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} does not exist", code="TASK_NOT_FOUND")
        if task.branch_of is not None:  # a branch's record id (a branch wait's notify names it): its task
            task_id = task.branch_of["taskId"]
            continue
        if task.status == "ABORTED":
            return task, False
        if task.is_final:
            raise Conflict(f"task {task_id!r} ended already (status {task.status})", code="ALREADY_FINAL")
        try:
            aborted = repo.save(
                task,
                status="ABORTED",
                error=_cancelled(message, task.current_step, task.branch_id),
                waiting_for=None,
                resume_token_hash=None,
            )
        except ConcurrentUpdate:
            continue  # a step or a resume committed first: decide again on the new state
        log.info("task cancelled", extra={"taskId": task_id, "from": task.status, "reason": message})
        _stop_execution(aborted, message)
        _abort_branches(repo, task, message)
        return aborted, True
    raise Conflict(f"task {task_id!r} kept changing; try again", code="CONCURRENT_UPDATE")


def _cancelled(message: str, step_id: str | None, branch_id: str | None) -> dict[str, Any]:
    return normalized_error(ErrorName.CANCELLED, message, step_id=step_id, branch_id=branch_id)


def _stop_execution(task: Task, message: str) -> None:
    if not task.execution_arn:
        return  # the start never reached Step Functions: nothing runs
    try:
        client("stepfunctions").stop_execution(
            executionArn=task.execution_arn, error=ErrorName.CANCELLED, cause=message[:_STOP_CAUSE_LIMIT]
        )
    except ClientError as exc:
        # An execution that ended meanwhile (or a continuation that never started) has nothing to stop.
        if exc.response["Error"]["Code"] not in ("ExecutionDoesNotExist", "ExecutionNotRunning"):
            raise
        log.info("no running execution to stop", extra={"taskId": task.task_id, "code": exc.response["Error"]["Code"]})


def _abort_branches(repo: TaskRepository, task: Task, message: str) -> None:
    pending = task.step_state or {}
    if pending.get("kind") != StepStateKind.PARALLEL:
        return
    for record_id in pending.get("branches", []):
        for _ in range(_ATTEMPTS):
            branch = repo.get(record_id)
            if branch is None or branch.is_final:
                break
            try:
                repo.save(
                    branch,
                    status="ABORTED",
                    error=_cancelled(message, branch.current_step, branch.branch_id),
                    waiting_for=None,
                    resume_token_hash=None,
                )
                break
            except ConcurrentUpdate:
                continue
