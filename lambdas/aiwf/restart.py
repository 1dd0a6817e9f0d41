"""Restart: a task whose execution is gone goes on from its record, in a new execution.

The local stack keeps its tables across restarts but not Step Functions' executions (they live
in the emulator's memory), so when it starts again it asks the process function, in `restart`
mode, to carry on with each task that had not ended. Everything a task needs is on its record
(the step it is at, the context before that step, a poll's progress, a parallel step's branch
records), as for a redrive (control.redrive_task), so an execution with the recorded name is
started again and ProcessSteps picks the task up where the record says:
- a running step runs again from its start (what Lambda's at-least-once delivery allows anyway);
- a wait is announced again, with a new token (callbacks.register_wait replaces the old one and
  remembers it, so the old token is answered 410 TOKEN_REPLACED, not "wrong token");
- a poll goes on counting its attempts;
- a parallel step runs the branches that had not ended (the others keep their end).
Which execution starts again is the task's engine's (aiwf.engines): a quick run cut off on Express
goes on as the task's Standard execution, and durable executions are not restarted.
"""

from __future__ import annotations

import logging
from typing import Any

from .engines import NotRestarted, engine_for
from .errors import ConcurrentUpdate
from .protocol import StepStateKind
from .repository import Task, TaskRepository

log = logging.getLogger(__name__)
_ATTEMPTS = 5


def restart_task(task_id: str) -> dict[str, Any]:
    """Start `task_id`'s execution again if the task has not ended; what was done, for the log."""
    repo = TaskRepository()
    for _ in range(_ATTEMPTS):
        task = repo.get(task_id)
        if task is None or task.branch_of is not None or task.is_final:
            return {"taskId": task_id, "restarted": False}
        try:
            task = _rerun_open_branches(repo, task)
        except ConcurrentUpdate:
            continue  # a late writer: decide again on the new state
        break
    else:
        return {"taskId": task_id, "restarted": False, "reason": "kept changing"}
    try:
        started = engine_for(task).restart(task)
    except NotRestarted as exc:
        return {"taskId": task_id, "restarted": False, "reason": exc.reason}
    if started != task.execution_arn:
        repo.set_execution(task, started)
    log.info("task restarted", extra={"taskId": task_id, "status": task.status, "executionArn": started})
    return {"taskId": task_id, "restarted": True, "executionArn": started}


def _rerun_open_branches(repo: TaskRepository, task: Task) -> Task:
    """At a parallel step whose branches were running, mark the branches that have not ended to run
    again (the step's `rerun`, as a redrive does); the others keep their end."""
    pending = task.step_state or {}
    if pending.get("kind") != StepStateKind.PARALLEL or pending.get("stepId") != task.current_step:
        return task
    if pending.get("rerun"):
        return task  # a redrive's rerun not started yet: it still stands
    open_branches = []
    for record_id in pending.get("branches", []):
        branch = repo.get(record_id)
        if branch is not None and not branch.is_final:
            open_branches.append(record_id)
    if not open_branches:
        return task  # every branch ended: ProcessSteps gathers them
    return repo.save(task, step_state={**pending, "rerun": open_branches})
