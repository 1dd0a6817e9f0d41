"""Callbacks: a `wait_for_event` step parks the task on its engine's wait.

`register_wait` runs as the Lambda of the `.waitForTaskToken` state (or the durable callback's
submitter) with the engine's handle on the wait (a task token, a callback id). It keeps that
handle on the task record for the backend, makes a resume token of our own (resume_tokens.py:
only its sha256 is stored) and a wait id, marks the task WAITING with the wait's deadline and
tells the external system at `notify.url`, if any, the token and the wait's `callbackUrl`.
`resume_task` is `PUT /tasks/{taskId}` (and `callback_task`, `POST /callbacks/{waitId}`): it
checks the token's hash, consumes it in one conditional write (so two resumes cannot both win),
leaves the outcome for ProcessSteps and completes the engine's wait with the stored handle.
`heartbeat_task` checks the token the same way and keeps a `heartbeatSeconds` wait alive.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import egress
from .clock import now_iso
from .engines import engine_for
from .errors import ConcurrentUpdate, Conflict, Forbidden, Gone, NotFound, normalized_error
from .protocol import ErrorName, StepStateKind
from .repository import Task, TaskRepository
from .resume_tokens import callback_url, new_resume_token, new_wait_id, token_hash
from .settings import task_api_url
from .task_flow import load_flow, load_task
from .templates import render

log = logging.getLogger(__name__)
NOTIFY_TIMEOUT_SECONDS = 10
# The wait index is read eventually consistently: a wait id just announced may take a moment to
# show there, so a miss is asked again this often, this far apart, before it is a 404.
_WAIT_LOOKUPS = 3
_WAIT_LOOKUP_PAUSE_SECONDS = 0.2


class NotifyFailed(Exception):
    """The notify URL of a wait did not accept the resume token (its name becomes errorName)."""


def _expired(task: Task) -> bool:
    expires_at = (task.waiting_for or {}).get("expiresAt")
    return bool(expires_at) and expires_at <= now_iso()


def register_wait(task_id: str, step_id: str, engine_token: str) -> dict[str, Any]:
    """Park the task on the wait the engine holds as `engine_token`, and announce it."""
    repo = TaskRepository()
    task = load_task(repo, task_id)
    step = load_flow(task).steps[step_id]
    token = new_resume_token()
    if task.engine_token == engine_token and task.status == "WAITING" and task.wait_id:
        # A retried invocation stored this wait already, but only a hash of the token it made:
        # the wait is announced again with a new one (the first one is told it was replaced).
        task = repo.replace_resume_token(task, token_hash(token))
        log.info("wait announced again", extra={"taskId": task_id, "stepId": step_id, "waitId": task.wait_id})
    else:
        # A wait still holding another token is being announced again (restart.py): that token is
        # replaced, and remembered so it is told why instead of "wrong token"; the wait keeps its id.
        again = task.status == "WAITING" and task.current_step == step_id and bool(task.wait_id)
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
            resume_token_hash=token_hash(token),
            wait_id=task.wait_id if again else new_wait_id(),
            engine_token=engine_token,
            replaced_token_hash=replaced or task.replaced_token_hash,
            step_state=None,
        )
        log.info(
            "task waiting",
            extra={"taskId": task_id, "stepId": step_id, "waitId": task.wait_id, "tokenReplaced": bool(replaced)},
        )
    notify = step.get("notify")
    if notify:
        _notify(render(notify["url"], task.context), task, step_id, token)
    return {"taskId": task_id, "stepId": step_id}


def notification(task: Task, step_id: str, token: str) -> dict[str, Any]:
    """What `notify.url` receives: the one place our resume token leaves the backend."""
    return {
        "taskId": task.task_id,  # a branch's record: its id, which PUT /tasks/{taskId} takes too
        "stepId": step_id,
        "branchId": task.branch_id,
        "waitId": task.wait_id,
        "resumeToken": token,
        "callbackUrl": callback_url(task_api_url(), task.wait_id or ""),
        "input": task.context.get("input"),
    }


def _notify(url: str, task: Task, step_id: str, token: str) -> None:
    body = json.dumps(notification(task, step_id, token)).encode()
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
            f"this resume token of task {task_id!r} was replaced: the wait was announced again to its notify "
            "URL with a new token (the stack restarted while the task waited, or the announcement was retried)",
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
        engine_for(task).complete_wait(task, _engine_token(task, token), outcome)
    except Gone:
        _conflict_if_ended_meanwhile(repo, task_id)
        raise
    log.info("task resumed", extra={"taskId": task_id, "stepId": step_id, "resumeStatus": status})
    return task


def _engine_token(task: Task, token: str) -> str:
    """The engine's handle on the wait the record keeps; a wait registered before waits kept one
    handed out the engine's token itself as the resume token, which the caller just presented."""
    return task.engine_token or token


def _conflict_if_ended_meanwhile(repo: TaskRepository, task_id: str) -> None:
    """A token that died under a committed resume: a cancel ended the task (and its execution)
    between our write and our SendTaskSuccess. The resume lost that race: 409, not 410."""
    task = repo.get(task_id)
    if task is not None and task.is_final:
        raise Conflict(f"task {task_id!r} ended meanwhile (status {task.status})", code="NOT_WAITING")


def heartbeat_task(task_id: str, token: str) -> dict[str, Any]:
    """`POST /tasks/{taskId}/heartbeat`: the external system holding the wait's token says it is
    still working. The engine's wait is heartbeated with its own handle (SendTaskHeartbeat with the
    stored task token), which restarts the wait's `heartbeatSeconds` clock (the wait's whole
    `timeoutSeconds` still bounds it). Nothing is committed: a heartbeat is no state change, so it
    adds no history record."""
    task = _waiting_task(TaskRepository(), task_id, token)
    engine_for(task).heartbeat(task, _engine_token(task, token))
    log.info("wait heartbeat", extra={"taskId": task_id})
    return {"taskId": task_id, "heartbeatAt": now_iso()}


def task_of_wait(wait_id: str) -> str:
    """The id of the record (a task, or a parallel branch's) whose wait `wait_id` names; 404
    WAIT_NOT_FOUND when none does. The record keeps its last wait's id after the wait ends, so a
    used or expired wait is answered 409 / 410 as on `PUT /tasks/{taskId}`, not 404."""
    repo = TaskRepository()
    for attempt in range(_WAIT_LOOKUPS):
        task_id = repo.task_id_of_wait(wait_id)
        if task_id is not None:
            return task_id
        if attempt + 1 < _WAIT_LOOKUPS:
            time.sleep(_WAIT_LOOKUP_PAUSE_SECONDS)
    raise NotFound(f"no wait {wait_id!r}", code="WAIT_NOT_FOUND")


def callback_task(wait_id: str, token: str, status: str, output: Any, error: dict[str, Any] | None) -> Task:
    """`POST /callbacks/{waitId}`: resume the wait by its id with the token alone (no other
    credential), answering as `PUT /tasks/{taskId}` does."""
    return resume_task(task_of_wait(wait_id), token, status, output, error)


def callback_heartbeat(wait_id: str, token: str) -> dict[str, Any]:
    """`POST /callbacks/{waitId}/heartbeat`: the heartbeat of the wait named by its id."""
    return heartbeat_task(task_of_wait(wait_id), token)
