"""Callbacks: a `wait_for_event` step parks the task on a Step Functions task token.

`register_wait` runs as the Lambda of the `.waitForTaskToken` state: it stores the token's
sha256 (never the token) with the wait's deadline, marks the task WAITING and tells the
external system at `notify.url`, if any, the token it must present. `resume_task` is
`PUT /tasks/{taskId}`: it checks the token, consumes it in one conditional write (so two
resumes cannot both win), leaves the outcome for ProcessSteps and completes the token.
`heartbeat_task` checks the token the same way and keeps a `heartbeatSeconds` wait alive.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from . import egress
from .clock import now_iso
from .engines import engine_for
from .errors import ConcurrentUpdate, Conflict, Forbidden, Gone, NotFound, normalized_error
from .protocol import ErrorName, StepStateKind
from .repository import Task, TaskRepository
from .task_flow import load_flow, load_task
from .templates import render

log = logging.getLogger(__name__)
NOTIFY_TIMEOUT_SECONDS = 10


class NotifyFailed(Exception):
    """The notify URL of a wait did not accept the resume token (its name becomes errorName)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _expired(task: Task) -> bool:
    expires_at = (task.waiting_for or {}).get("expiresAt")
    return bool(expires_at) and expires_at <= now_iso()


def register_wait(task_id: str, step_id: str, token: str) -> dict[str, Any]:
    repo = TaskRepository()
    task = load_task(repo, task_id)
    step = load_flow(task).steps[step_id]
    hashed = token_hash(token)
    if task.resume_token_hash != hashed:  # a retried invocation has stored it already
        # A wait still holding another token is being announced again (restart.py): that token is
        # replaced, and remembered so it is told why instead of "wrong token".
        replaced = task.resume_token_hash if task.status == "WAITING" else None
        deadline = datetime.now(UTC) + timedelta(seconds=step["timeoutSeconds"])
        waiting_for = {
            "stepId": step_id,
            "timeoutSeconds": step["timeoutSeconds"],
            "heartbeatSeconds": step.get("heartbeatSeconds"),
            "expiresAt": deadline.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }
        task = repo.save(
            task,
            status="WAITING",
            current_step=step_id,
            waiting_for=waiting_for,
            resume_token_hash=hashed,
            replaced_token_hash=replaced or task.replaced_token_hash,
            step_state=None,
        )
        log.info("task waiting", extra={"taskId": task_id, "stepId": step_id, "tokenReplaced": bool(replaced)})
    notify = step.get("notify")
    if notify:
        _notify(render(notify["url"], task.context), task, step_id, token)
    return {"taskId": task_id, "stepId": step_id}


def _notify(url: str, task: Task, step_id: str, token: str) -> None:
    body = json.dumps(
        {"taskId": task.task_id, "stepId": step_id, "resumeToken": token, "input": task.context.get("input")}
    ).encode()
    try:
        response = egress.request(
            "POST", url, headers={"Content-Type": "application/json"}, body=body, timeout=NOTIFY_TIMEOUT_SECONDS
        )
    except (TimeoutError, OSError) as exc:
        raise NotifyFailed(f"notify URL unreachable: {exc}") from exc
    status = response.status
    if not 200 <= status < 300:
        raise NotifyFailed(f"notify URL answered {status}")
    log.info("wait notified", extra={"taskId": task.task_id, "stepId": step_id, "httpStatus": status})


def _waiting_task(repo: TaskRepository, task_id: str, token: str) -> Task:
    """The task whose current wait `token` belongs to: what resume and heartbeat both require."""
    task = repo.get(task_id)  # a wait in a parallel branch is on the branch's record: its id works too
    if task is None:
        raise NotFound(f"task {task_id!r} does not exist", code="TASK_NOT_FOUND")
    hashed = token_hash(token)
    matches = task.resume_token_hash is not None and task.resume_token_hash == hashed
    if not matches and task.replaced_token_hash == hashed:
        raise Gone(
            f"this resume token of task {task_id!r} was replaced: the stack restarted while the task waited, "
            "and the wait was announced again to its notify URL with a new token",
            code="TOKEN_REPLACED",
        )
    if task.status != "WAITING":
        if matches and _expired(task):
            raise Gone(f"the wait of task {task_id!r} expired", code="WAIT_EXPIRED")
        raise Conflict(f"task {task_id!r} is not waiting (status {task.status})", code="NOT_WAITING")
    if not matches:
        raise Forbidden("the resume token does not match this task's wait", code="WRONG_TOKEN")
    if _expired(task):
        raise Gone(f"the wait of task {task_id!r} expired", code="WAIT_EXPIRED")
    return task


def resume_task(task_id: str, token: str, status: str, output: Any, error: dict[str, Any] | None) -> Task:
    repo = TaskRepository()
    task = _waiting_task(repo, task_id, token)
    hashed = token_hash(token)
    step_id = (task.waiting_for or {}).get("stepId") or task.current_step
    outcome: dict[str, Any] = {"kind": StepStateKind.RESUME, "stepId": step_id, "status": status, "output": output}
    if status == "FAILED":
        outcome["error"] = normalized_error(
            (error or {}).get("errorName") or ErrorName.RESUMED_WITH_FAILURE,
            (error or {}).get("errorMessage") or "the external system reported a failure",
            details=(error or {}).get("errorDetails"),
            step_id=step_id,
        )
    try:
        task = repo.save(
            task,
            status="RUNNING",
            waiting_for=None,
            resume_token_hash=None,
            step_state=outcome,
            expect_token_hash=hashed,
        )
    except ConcurrentUpdate as exc:
        raise Conflict(f"the resume token of task {task_id!r} was already used", code="TOKEN_USED") from exc
    try:
        engine_for(task).complete_wait(task, token, outcome)
    except Gone:
        _conflict_if_ended_meanwhile(repo, task_id)
        raise
    log.info("task resumed", extra={"taskId": task_id, "stepId": step_id, "resumeStatus": status})
    return task


def _conflict_if_ended_meanwhile(repo: TaskRepository, task_id: str) -> None:
    """A token that died under a committed resume: a cancel ended the task (and its execution)
    between our write and our SendTaskSuccess. The resume lost that race: 409, not 410."""
    task = repo.get(task_id)
    if task is not None and task.is_final:
        raise Conflict(f"task {task_id!r} ended meanwhile (status {task.status})", code="NOT_WAITING")


def heartbeat_task(task_id: str, token: str) -> dict[str, Any]:
    """`POST /tasks/{taskId}/heartbeat`: the external system holding the wait's token says it is
    still working. The token is the Step Functions task token, so SendTaskHeartbeat restarts the
    wait's `heartbeatSeconds` clock (the wait's whole `timeoutSeconds` still bounds it). Nothing is
    committed: a heartbeat is no state change, so it adds no history record."""
    task = _waiting_task(TaskRepository(), task_id, token)
    engine_for(task).heartbeat(task, token)
    log.info("wait heartbeat", extra={"taskId": task_id})
    return {"taskId": task_id, "heartbeatAt": now_iso()}
