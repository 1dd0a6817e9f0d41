"""ProcessSteps: run as many consecutive inline steps as one invocation allows.

The first call of a task starts it, the call that reaches the end finishes it, and every step
boundary is a committed state change (a history record with the next `seq`). If the invocation
is retried after a crash, it resumes from the last committed step.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .branches import branch_steps
from .continuation import continuation
from .errors import StepError, normalized_error
from .flow_store import FlowStore
from .native_steps import NATIVE_STEPS, poll_progress, poll_seconds
from .paths import get_path
from .protocol import Action, StepStateKind
from .repository import Task, TaskRepository
from .runtime_limits import check_step_output, step_limit_error
from .steps import INLINE_STEPS, StepOutcome, result_path

log = logging.getLogger(__name__)

# Stop starting steps when less time than this is left, and hand over to a fresh invocation.
SAFETY_MARGIN_MS = 5_000
# A flow that loops through choices forever still yields the invocation now and then.
MAX_STEPS_PER_INVOCATION = 200
DEFAULT_RETRY = {"maxAttempts": 3, "intervalSeconds": 1, "backoffRate": 2.0}


def _elapsed_seconds(task: Task) -> float:
    started = datetime.fromisoformat(task.started_at.replace("Z", "+00:00"))
    return (datetime.now(UTC) - started).total_seconds()


def _run_step(task: Task, step_id: str, step: dict[str, Any]) -> StepOutcome:
    context = copy.deepcopy(task.context)
    native = NATIVE_STEPS.get(step["type"])
    if native is None:
        outcome = INLINE_STEPS[step["type"]](step_id, step, context)
    else:
        pending = task.step_state if _started(task, step_id) else None
        outcome = native(step_id, step, context, pending, task)
    if outcome.next is not None:  # the step went on: bound what it wrote before it is committed
        writes = step["type"] != "choice"
        result = get_path(outcome.context, result_path(step_id, step)) if writes else None
        check_step_output(step_id, result, writes, outcome.context)
    return outcome


def _started(task: Task, step_id: str) -> bool:
    """True when `step_id` already began (a wait, poll, fork or retry left its state): not a new step."""
    return bool(task.step_state and task.step_state.get("stepId") == step_id)


def _with_usage(task: Task, step_id: str, usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """The task's llm usage with one more call of `step_id` added (per step: calls and tokens)."""
    if usage is None:
        return task.llm_usage
    log.info("llm usage", extra={"taskId": task.task_id, "stepId": step_id, **usage})
    totals = dict(task.llm_usage or {})
    previous = totals.get(step_id, {"calls": 0, "inputTokens": 0, "outputTokens": 0})
    totals[step_id] = {
        "provider": usage["provider"],
        "model": usage["model"],
        "calls": previous["calls"] + 1,
        "inputTokens": previous["inputTokens"] + usage["inputTokens"],
        "outputTokens": previous["outputTokens"] + usage["outputTokens"],
    }
    return totals


def _retry_action(task: Task, step_id: str, step: dict[str, Any], exc: StepError) -> dict[str, Any] | None:
    """A RETRY action when an inline step declares `retry` and the error is retryable, else None.

    Retries wait in the state machine (RetryWait), not in the Lambda: intervalSeconds, growing
    by backoffRate; maxAttempts counts the retries after the first attempt, as in ASL.
    """
    retry = step.get("retry")
    if retry is None or step["type"] in NATIVE_STEPS or not exc.retryable:
        return None
    pending = task.step_state or {}
    done = (
        pending.get("attempts", 0)
        if pending.get("kind") == StepStateKind.RETRY and pending.get("stepId") == step_id
        else 0
    )
    if done >= retry.get("maxAttempts", DEFAULT_RETRY["maxAttempts"]):
        return None
    interval = retry.get("intervalSeconds", DEFAULT_RETRY["intervalSeconds"])
    backoff = retry.get("backoffRate", DEFAULT_RETRY["backoffRate"])
    return {"action": Action.RETRY, "stepId": step_id, "attempt": done + 1, "seconds": round(interval * backoff**done)}


def process_steps(
    task_id: str,
    remaining_ms: Callable[[], int],
    max_steps: int = MAX_STEPS_PER_INVOCATION,
    execution_arn: str | None = None,
    rounds: int = 0,
) -> dict[str, Any]:
    """Advance a task by up to `max_steps` steps; answer the state machine's Route with the next `action`."""
    repo = TaskRepository()
    task = repo.get(task_id)
    if task is None:
        raise StepError("TaskNotFound", f"task {task_id} does not exist")
    if task.is_final:
        log.info("task already final", extra={"taskId": task_id, "status": task.status})
        action = Action.SUCCEEDED if task.status == "SUCCEEDED" else Action.FAILED  # TIMED_OUT, ABORTED fail
        return {"taskId": task_id, "action": action, "error": task.error}
    flow_version = FlowStore().get(task.flow_id, task.flow_version)
    if flow_version is None:
        raise StepError("FlowNotFound", f"flow {task.flow_id} version {task.flow_version} does not exist")
    flow = flow_version.document
    steps, start_at = branch_steps(flow, task)
    handover = continuation(task, execution_arn, rounds)
    if handover is not None:
        return handover
    if task.status == "PENDING":
        task = repo.save(task, status="RUNNING", current_step=start_at)
        log.info("task started", extra={"taskId": task_id, "flowId": task.flow_id})

    for _ in range(max_steps):
        timeout = flow.get("timeoutSeconds")
        if timeout and _elapsed_seconds(task) > timeout:
            error = normalized_error(
                "States.Timeout",
                f"task exceeded the flow's timeoutSeconds ({timeout})",
                step_id=task.current_step,
                branch_id=task.branch_id,
            )
            repo.save(task, status="TIMED_OUT", error=error)
            return {"taskId": task_id, "action": Action.FAILED, "error": error}
        step_id = task.current_step
        assert step_id is not None
        step = steps[step_id]
        over_budget = step_limit_error(flow, task.steps_run, step_id, task.branch_id)
        if over_budget is not None and not _started(task, step_id):
            log.warning("step budget spent", extra={"taskId": task_id, "stepId": step_id, "error": over_budget})
            repo.save(task, status="FAILED", error=over_budget, step_state=None)
            return {"taskId": task_id, "action": Action.FAILED, "error": over_budget}
        try:
            outcome = _run_step(task, step_id, step)
        except StepError as exc:
            error = normalized_error(
                exc.error_name,
                exc.message,
                details=exc.details,
                retryable=exc.retryable,
                step_id=step_id,
                branch_id=exc.branch_id or task.branch_id,
            )
            retry = _retry_action(task, step_id, step, exc)
            if retry is not None:
                attempts = retry["attempt"]
                repo.save(task, step_state={"kind": StepStateKind.RETRY, "stepId": step_id, "attempts": attempts})
                log.info("step error, retrying", extra={"taskId": task_id, "stepId": step_id, "error": error})
                return {"taskId": task_id, **retry}
            if "catch" in step:
                log.info("step error caught", extra={"taskId": task_id, "stepId": step_id, "error": error})
                task = repo.save(
                    task,
                    status="RUNNING",
                    current_step=step["catch"],
                    context={**task.context, "error": error},
                    step_state=None,
                    steps_run=task.steps_run + 1,
                )
                continue
            log.warning("step failed", extra={"taskId": task_id, "stepId": step_id, "error": error})
            repo.save(task, status="FAILED", error=error, step_state=None, steps_run=task.steps_run + 1)
            return {"taskId": task_id, "action": Action.FAILED, "error": error}
        if outcome.action is not None:
            if outcome.status is not None or outcome.step_state is not None:
                task = repo.save(
                    task,
                    status=outcome.status or task.status,
                    context=outcome.context,
                    step_state=outcome.step_state,
                )
            log.info("handing over to the state machine", extra={"taskId": task_id, "stepId": step_id})
            return {"taskId": task_id, **outcome.action}
        if outcome.error is not None:
            error = {**outcome.error, "branchId": task.branch_id}
            repo.save(
                task,
                status="FAILED",
                error=error,
                context=outcome.context,
                step_state=None,
                steps_run=task.steps_run + outcome.steps,
            )
            log.info("task failed by a fail step", extra={"taskId": task_id, "stepId": step_id})
            return {"taskId": task_id, "action": Action.FAILED, "error": error}
        if outcome.succeeded:
            repo.save(
                task,
                status="SUCCEEDED",
                output=outcome.output,
                context=outcome.context,
                step_state=None,
                steps_run=task.steps_run + outcome.steps,
            )
            log.info("task succeeded", extra={"taskId": task_id, "stepId": step_id})
            return {"taskId": task_id, "action": Action.SUCCEEDED}
        usage = _with_usage(task, step_id, outcome.usage)
        task = repo.save(
            task,
            status="RUNNING",
            current_step=outcome.next,
            context=outcome.context,
            step_state=None,
            llm_usage=usage,
            steps_run=task.steps_run + outcome.steps,
        )
        if remaining_ms() < SAFETY_MARGIN_MS:
            break
    return {"taskId": task_id, "action": Action.PROCESS}


def poll_check(
    task_id: str, remaining_ms: Callable[[], int], execution_arn: str | None = None, rounds: int = 0
) -> dict[str, Any]:
    """PollCheck: one more check of the poll the task is in, recorded; when it ends, go on right here."""
    repo = TaskRepository()
    task = repo.get(task_id)
    if task is None:
        raise StepError("TaskNotFound", f"task {task_id} does not exist")
    pending = task.step_state
    if task.is_final or not pending or pending.get("kind") != StepStateKind.POLL or pending.get("outcome"):
        return process_steps(task_id, remaining_ms, execution_arn=execution_arn, rounds=rounds)  # nothing to check
    flow_version = FlowStore().get(task.flow_id, task.flow_version)
    if flow_version is None:
        raise StepError("FlowNotFound", f"flow {task.flow_id} version {task.flow_version} does not exist")
    step_id = pending["stepId"]
    step = branch_steps(flow_version.document, task)[0][step_id]
    progress = poll_progress(step_id, step, copy.deepcopy(task.context), pending["attempts"] + 1)
    task = repo.save(task, step_state=progress)
    log.info("poll checked", extra={"taskId": task_id, "stepId": step_id, "attempts": progress["attempts"]})
    if progress.get("outcome") is None:
        handover = continuation(task, execution_arn, rounds)  # a long poll grows the history on its own
        if handover is not None:
            return handover
        seconds = poll_seconds(step, progress["attempts"])
        return {"taskId": task_id, "action": Action.POLL, "stepId": step_id, "seconds": seconds}
    return process_steps(task_id, remaining_ms, execution_arn=execution_arn, rounds=rounds)


def finalize_failure(task_id: str, error: dict[str, Any]) -> dict[str, Any]:
    """Record the normalized error the state machine built for a failure outside any step."""
    repo = TaskRepository()
    task = repo.get(task_id)
    if task is None:
        return {"taskId": task_id, "action": Action.FAILED, "error": error}
    error = {**error, "stepId": error.get("stepId") or task.current_step, "branchId": task.branch_id}
    if task.is_final:
        return {"taskId": task_id, "action": Action.FAILED, "error": task.error or error}
    repo.save(task, status="FAILED", error=error)
    log.warning("task failed outside a step", extra={"taskId": task_id, "error": error})
    return {"taskId": task_id, "action": Action.FAILED, "error": error}
