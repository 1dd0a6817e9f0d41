"""Status reconciler: an execution that ends outside any Lambda still ends its task.

EventBridge delivers Step Functions "Execution Status Change" events for FAILED, TIMED_OUT and
ABORTED executions. A task whose record is not final yet (the execution was stopped, timed out
as a whole, or died where no Finalize could run) gets the matching status and a normalized
error. A task that is final already (the usual case: Finalize ran first) is left alone.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .errors import ConcurrentUpdate, normalized_error
from .express import same_execution
from .repository import TaskRepository

log = logging.getLogger(__name__)
STATUSES = {"FAILED": "FAILED", "TIMED_OUT": "TIMED_OUT", "ABORTED": "ABORTED"}


def _task_id(detail: dict[str, Any]) -> str | None:
    try:
        task_id = json.loads(detail.get("input") or "{}").get("taskId")
    except (ValueError, AttributeError):
        task_id = None
    return task_id or detail.get("name")


def reconcile(event: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail") or {}
    status = STATUSES.get(detail.get("status", ""))
    task_id = _task_id(detail)
    if status is None or not task_id:
        return {"changed": False, "reason": "not a final failure of a task execution"}
    repo = TaskRepository()
    for _ in range(3):  # a concurrent writer may win the seq; read again and retry
        task = repo.get(task_id)
        if task is None or task.is_final:
            return {"taskId": task_id, "changed": False}
        if not same_execution(task.execution_arn, detail.get("executionArn")):
            return {"taskId": task_id, "changed": False, "reason": "an older execution of the task"}
        error = normalized_error(
            detail.get("error") or f"Execution.{detail['status'].title().replace('_', '')}",
            detail.get("cause") or f"the execution ended {detail['status']} outside any step",
            details={"executionArn": detail.get("executionArn")},
            retryable=status != "ABORTED",
            step_id=task.current_step,
        )
        try:
            repo.save(task, status=status, error=error)
        except ConcurrentUpdate:
            continue
        log.warning("task reconciled", extra={"taskId": task_id, "status": status})
        return {"taskId": task_id, "changed": True, "status": status}
    return {"taskId": task_id, "changed": False, "reason": "kept changing"}
