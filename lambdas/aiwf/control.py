"""Cancel: an operator or client stops a task in any non-final state (POST /tasks/{id}/cancel).

The task's record is the source of truth, so the ABORTED state is committed first, conditional on
the `seq` read (a cancel racing a resume or a step: one of them wins, the other sees the change and
either retries on the new state or fails with 409). The commit clears the resume-token hash, so a
later resume with the old token is 409. Then the execution is stopped (parallel branches are
inline Map iterations of the same execution, so one StopExecution ends them); a step still running
in a Lambda at that moment cannot commit after ABORTED (its conditional write loses), and any call
ProcessSteps or PollCheck still gets answers "already final". Branch records still open are closed
ABORTED too, so every record of the task tells the same end; a branch record's id (the `taskId` a
wait inside a branch notifies) cancels its task. How an execution is stopped, and a redrive
started, is its engine's (aiwf.engines): an Express run cannot be stopped and ends at its next step.
"""

from __future__ import annotations

import logging
from typing import Any

from .clock import now_iso
from .engines import engine_for
from .errors import ConcurrentUpdate, Conflict, NotFound, normalized_error
from .protocol import ErrorName, StepStateKind
from .repository import Task, TaskRepository
from .task_flow import TaskFlow, load_flow

log = logging.getLogger(__name__)
_ATTEMPTS = 5
DEFAULT_REASON = "cancelled by request"


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
        engine_for(aborted).stop(aborted, message)
        _abort_branches(repo, task, message)
        return aborted, True
    raise Conflict(f"task {task_id!r} kept changing; try again", code="CONCURRENT_UPDATE")


def _cancelled(message: str, step_id: str | None, branch_id: str | None) -> dict[str, Any]:
    return normalized_error(ErrorName.CANCELLED, message, step_id=step_id, branch_id=branch_id)


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


# -- redrive ------------------------------------------------------------------------------------
REDRIVABLE = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


def redrive_task(task_id: str) -> Task:
    """Go on with a FAILED / TIMED_OUT / ABORTED task from the step where it ended.

    The step's input context is the stored one (every step boundary commits it, and a failing step
    commits none), so the task is committed RUNNING at `current_step` with that context, no error,
    `redriveCount` + 1 and the step budget as it was; then a new execution `<taskId>-r<n>` runs it
    (the record names it before it starts, so the reconciler ignores the older execution's events).
    In a `parallel` step only the branches that did not succeed are reset and run again. A task
    ended by a `fail` step, or not ended that way, is 409 NOT_REDRIVABLE: so a second redrive
    right after the first (the task is RUNNING) is refused and starts nothing.
    """
    repo = TaskRepository()
    for _ in range(_ATTEMPTS):
        task = repo.get(task_id)
        if task is None or task.branch_of is not None:
            raise NotFound(f"task {task_id!r} does not exist", code="TASK_NOT_FOUND")
        if task.status not in REDRIVABLE:
            raise Conflict(
                f"task {task_id!r} is {task.status}: only FAILED, TIMED_OUT or ABORTED tasks can be redriven",
                code="NOT_REDRIVABLE",
            )
        flow = load_flow(task)
        if _ended_by_fail_step(repo, task, flow):
            raise Conflict(f"task {task_id!r} was ended by a fail step of its flow", code="NOT_REDRIVABLE")
        if task.current_step is None:
            raise Conflict(f"task {task_id!r} never started a step", code="NOT_REDRIVABLE")
        count = task.redrive_count + 1
        engine = engine_for(task)  # a quick run's redrive runs on Standard
        execution_arn = engine.redrive_arn(task, count)
        pending = _parallel_state(task, flow)
        try:
            redriven = repo.save(
                task,
                status="RUNNING",
                error=None,
                output=None,
                waiting_for=None,
                resume_token_hash=None,
                step_state=pending,
                redrive_count=count,
                redriven_at=now_iso(),
                execution_arn=execution_arn,
            )
        except ConcurrentUpdate:
            continue  # another redrive (or a late writer) won: decide again on the new state
        if pending is not None:
            _reset_branches(repo, pending["rerun"], count)
        started = engine.redrive(task, count)
        if started != execution_arn:
            redriven = repo.set_execution(redriven, started)
        log.info("task redriven", extra={"taskId": task_id, "from": task.status, "redriveCount": count})
        return redriven
    raise Conflict(f"task {task_id!r} kept changing; try again", code="CONCURRENT_UPDATE")


def _ended_by_fail_step(repo: TaskRepository, task: Task, flow: TaskFlow) -> bool:
    """True when the task (or, in a parallel step, a failed branch of it) stopped at a `fail` step."""
    if task.status != "FAILED":
        return False
    step = flow.steps.get(task.current_step or "")
    if step is not None and step["type"] == "fail":
        return True
    pending = task.step_state or {}
    if step is None or step["type"] != "parallel" or pending.get("kind") != StepStateKind.PARALLEL:
        return False
    for record_id in pending.get("branches", []):
        branch = repo.get(record_id)
        if branch is None or branch.status != "FAILED":
            continue
        branch_step = load_flow(branch).steps.get(branch.current_step or "")
        if branch_step is not None and branch_step["type"] == "fail":
            return True
    return False


def _parallel_state(task: Task, flow: TaskFlow) -> dict[str, Any] | None:
    """The step state a redrive leaves: for a parallel step whose branches exist, theirs with the
    ids to run again (`rerun`: the branches that did not succeed); else none (the step starts afresh)."""
    pending = task.step_state or {}
    step = flow.steps.get(task.current_step or "")
    if step is None or step["type"] != "parallel" or pending.get("kind") != StepStateKind.PARALLEL:
        return None
    if pending.get("stepId") != task.current_step:
        return None
    repo = TaskRepository()
    rerun = []
    for record_id in pending.get("branches", []):
        branch = repo.get(record_id)
        if branch is None or branch.status != "SUCCEEDED":
            rerun.append(record_id)
    if any(repo.get(record_id) is None for record_id in rerun):
        return None  # a record is gone: fork afresh
    return {**pending, "rerun": rerun}


def _reset_branches(repo: TaskRepository, record_ids: list[str], count: int) -> None:
    """Each failed (or cancelled, or unfinished) branch record RUNNING again at the step it stopped at."""
    for record_id in record_ids:
        for _ in range(_ATTEMPTS):
            branch = repo.get(record_id)
            if branch is None or branch.status == "SUCCEEDED":
                break
            try:
                repo.save(
                    branch,
                    status="RUNNING",
                    error=None,
                    output=None,
                    waiting_for=None,
                    resume_token_hash=None,
                    step_state=None,
                    redrive_count=count,
                    redriven_at=now_iso(),
                )
                break
            except ConcurrentUpdate:
                continue
