"""ProcessSteps: run as many consecutive inline steps as one invocation allows.

The first call of a task starts it, the call that reaches the end finishes it, and every step
boundary is a committed state change (a history record with the next `seq`). If the invocation
is retried after a crash, it resumes from the last committed step.

Each way a round of the loop can end is one function below: the task timed out, the step budget
is spent, the step failed (then: retry, catch or fail), a native step hands over to the state
machine, a fail step or a succeed step ends the task, or the task goes on to its next step. The
ones that leave the loop answer the state machine's Route with an `action` (aiwf.protocol).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from .clock import seconds_since
from .errors import StepError, normalized_error
from .express import ExpressRun, same_execution
from .history_handover import hand_over_if_history_is_long
from .native_steps import NATIVE_STEPS, poll_progress, poll_seconds
from .paths import get_path
from .protocol import Action, StepStateKind
from .repository import Task, TaskRepository
from .runtime_limits import check_step_output, step_limit_error
from .steps import INLINE_STEPS, StepOutcome, result_path
from .task_flow import TaskFlow, load_flow, load_task

log = logging.getLogger(__name__)

# Stop starting steps when less time than this is left, and hand over to a fresh invocation.
SAFETY_MARGIN_MS = 5_000
# A flow that loops through choices forever still yields the invocation now and then.
MAX_STEPS_PER_INVOCATION = 200
DEFAULT_RETRY = {"maxAttempts": 3, "intervalSeconds": 1, "backoffRate": 2.0}

# What ProcessSteps, PollCheck and Finalize answer: `{"taskId", "action", ...the action's fields}`.
Answer = dict[str, Any]


def process_steps(
    task_id: str,
    remaining_ms: Callable[[], int],
    max_steps: int = MAX_STEPS_PER_INVOCATION,
    execution_arn: str | None = None,
    rounds: int = 0,
    execution_start_time: str | None = None,
) -> Answer:
    """Advance a task by up to `max_steps` steps; answer the state machine's Route with the next `action`.

    On the Express machine (a quick run) the task moves to the Standard machine before anything
    the Express execution could not finish in time (see aiwf.express)."""
    repo = TaskRepository()
    task = load_task(repo, task_id)
    if task.is_final:
        return _already_final(task)
    flow = load_flow(task)
    express = ExpressRun.of(execution_arn, execution_start_time)
    if express is not None and express.out_of_budget():
        return express.hand_over(task, "the Express budget is spent")
    handover = hand_over_if_history_is_long(task, execution_arn, rounds)
    if handover is not None:
        return handover
    if task.status == "PENDING":
        # An Express run records its real ARN here: the API could only reserve it (aiwf.express).
        recorded = {"execution_arn": express.execution_arn} if express is not None else {}
        task = repo.save(task, status="RUNNING", current_step=flow.start_at, **recorded)
        log.info("task started", extra={"taskId": task_id, "flowId": task.flow_id})
    for _ in range(max_steps):
        step_id = task.current_step or ""
        if express is not None and express.must_leave_before(flow.steps[step_id], _started(task, step_id)):
            return express.hand_over(task, f"step {task.current_step!r} needs the Standard machine")
        advanced = _run_one_step(repo, flow, task)
        if not isinstance(advanced, Task):
            if express is not None and not express.keeps(advanced):
                return express.hand_over(task, f"{advanced['action']} is not for the Express machine")
            return advanced
        task = advanced
        if remaining_ms() < SAFETY_MARGIN_MS or (express is not None and express.out_of_budget()):
            break
    return {"taskId": task_id, "action": Action.PROCESS}


def _run_one_step(repo: TaskRepository, flow: TaskFlow, task: Task) -> Answer | Task:
    """One round of the loop: the task's current step run and committed; an Answer leaves the loop."""
    timeout = flow.document.get("timeoutSeconds")
    if timeout and _elapsed_seconds(task) > timeout:
        return _time_out(repo, task, timeout)
    step_id = task.current_step
    assert step_id is not None
    step = flow.steps[step_id]
    over_budget = step_limit_error(flow.document, task.steps_run, step_id, task.branch_id)
    if over_budget is not None and not _started(task, step_id):
        return _fail_over_budget(repo, task, step_id, over_budget)
    try:
        outcome = _run_step(task, step_id, step)
    except StepError as exc:
        return _on_step_error(repo, task, step_id, step, exc)
    if outcome.action is not None:
        return _hand_over_to_native_state(repo, task, step_id, outcome)
    if outcome.error is not None:
        return _fail_by_fail_step(repo, task, step_id, outcome)
    if outcome.succeeded:
        return _succeed(repo, task, step_id, outcome)
    return _go_to_next_step(repo, task, step_id, outcome)


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


# -- the exits of one round ---------------------------------------------------------------------


def _already_final(task: Task) -> Answer:
    """A call for a task that ended already (a retried invocation, a late event): say how it ended."""
    log.info("task already final", extra={"taskId": task.task_id, "status": task.status})
    if task.status == "SUCCEEDED":
        return {"taskId": task.task_id, "action": Action.SUCCEEDED}
    return {"taskId": task.task_id, "action": Action.FAILED, "error": task.error}  # FAILED, TIMED_OUT, ABORTED


def _time_out(repo: TaskRepository, task: Task, timeout: int) -> Answer:
    """The flow's `timeoutSeconds` passed: the task ends TIMED_OUT before its next step."""
    error = normalized_error(
        "States.Timeout",
        f"task exceeded the flow's timeoutSeconds ({timeout})",
        step_id=task.current_step,
        branch_id=task.branch_id,
    )
    repo.save(task, status="TIMED_OUT", error=error)
    return {"taskId": task.task_id, "action": Action.FAILED, "error": error}


def _fail_over_budget(repo: TaskRepository, task: Task, step_id: str, error: dict[str, Any]) -> Answer:
    """The task's step budget (`maxSteps`) is spent: it fails before starting another step."""
    log.warning("step budget spent", extra={"taskId": task.task_id, "stepId": step_id, "error": error})
    repo.save(task, status="FAILED", error=error, step_state=None)
    return {"taskId": task.task_id, "action": Action.FAILED, "error": error}


def _on_step_error(
    repo: TaskRepository, task: Task, step_id: str, step: dict[str, Any], exc: StepError
) -> Answer | Task:
    """A step raised: retry it (declared `retry`, retryable error), else its `catch`, else fail the task."""
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
        return _retry(repo, task, step_id, retry, error)
    if "catch" in step:
        return _catch(repo, task, step_id, step["catch"], error)
    log.warning("step failed", extra={"taskId": task.task_id, "stepId": step_id, "error": error})
    # A failed parallel step keeps its branch records' ids: a redrive re-runs only the failed ones.
    kept = task.step_state if step["type"] == "parallel" and _started(task, step_id) else None
    repo.save(task, status="FAILED", error=error, step_state=kept, steps_run=task.steps_run + 1)
    return {"taskId": task.task_id, "action": Action.FAILED, "error": error}


def _retry_action(task: Task, step_id: str, step: dict[str, Any], exc: StepError) -> Answer | None:
    """A RETRY action when an inline step declares `retry` and the error is retryable, else None.

    Retries wait in the state machine (RetryWait), not in the Lambda: intervalSeconds, growing
    by backoffRate; maxAttempts counts the retries after the first attempt, as in ASL.
    """
    retry = step.get("retry")
    if retry is None or step["type"] in NATIVE_STEPS or not exc.retryable:
        return None
    pending = task.step_state or {}
    retrying = pending.get("kind") == StepStateKind.RETRY and pending.get("stepId") == step_id
    done = pending.get("attempts", 0) if retrying else 0
    if done >= retry.get("maxAttempts", DEFAULT_RETRY["maxAttempts"]):
        return None
    interval = retry.get("intervalSeconds", DEFAULT_RETRY["intervalSeconds"])
    backoff = retry.get("backoffRate", DEFAULT_RETRY["backoffRate"])
    return {"action": Action.RETRY, "stepId": step_id, "attempt": done + 1, "seconds": round(interval * backoff**done)}


def _retry(repo: TaskRepository, task: Task, step_id: str, retry: Answer, error: dict[str, Any]) -> Answer:
    """Record the attempt and let the state machine wait (RetryWait) before the step runs again."""
    step_state = {"kind": StepStateKind.RETRY, "stepId": step_id, "attempts": retry["attempt"]}
    repo.save(task, step_state=step_state)
    log.info("step error, retrying", extra={"taskId": task.task_id, "stepId": step_id, "error": error})
    return {"taskId": task.task_id, **retry}


def _catch(repo: TaskRepository, task: Task, step_id: str, catch: str, error: dict[str, Any]) -> Task:
    """The step's `catch` takes the error: go on there, with the error in the context."""
    log.info("step error caught", extra={"taskId": task.task_id, "stepId": step_id, "error": error})
    return repo.save(
        task,
        status="RUNNING",
        current_step=catch,
        context={**task.context, "error": error},
        step_state=None,
        steps_run=task.steps_run + 1,
    )


def _hand_over_to_native_state(repo: TaskRepository, task: Task, step_id: str, outcome: StepOutcome) -> Answer:
    """A native step (wait, poll, parallel) needs a state of the state machine: keep its state, answer its action."""
    if outcome.status is not None or outcome.step_state is not None:
        repo.save(task, status=outcome.status or task.status, context=outcome.context, step_state=outcome.step_state)
    log.info("handing over to the state machine", extra={"taskId": task.task_id, "stepId": step_id})
    assert outcome.action is not None
    return {"taskId": task.task_id, **outcome.action}


def _fail_by_fail_step(repo: TaskRepository, task: Task, step_id: str, outcome: StepOutcome) -> Answer:
    """A `fail` step ends the task with the error it names."""
    error = {**(outcome.error or {}), "branchId": task.branch_id}
    repo.save(
        task,
        status="FAILED",
        error=error,
        context=outcome.context,
        step_state=None,
        steps_run=task.steps_run + outcome.steps,
    )
    log.info("task failed by a fail step", extra={"taskId": task.task_id, "stepId": step_id})
    return {"taskId": task.task_id, "action": Action.FAILED, "error": error}


def _succeed(repo: TaskRepository, task: Task, step_id: str, outcome: StepOutcome) -> Answer:
    """A `succeed` step ends the task with its output."""
    repo.save(
        task,
        status="SUCCEEDED",
        output=outcome.output,
        context=outcome.context,
        step_state=None,
        steps_run=task.steps_run + outcome.steps,
    )
    log.info("task succeeded", extra={"taskId": task.task_id, "stepId": step_id})
    return {"taskId": task.task_id, "action": Action.SUCCEEDED}


def _go_to_next_step(repo: TaskRepository, task: Task, step_id: str, outcome: StepOutcome) -> Task:
    """The step went on: commit its context (and llm usage) with the next step as current."""
    return repo.save(
        task,
        status="RUNNING",
        current_step=outcome.next,
        context=outcome.context,
        step_state=None,
        llm_usage=_with_usage(task, step_id, outcome.usage),
        steps_run=task.steps_run + outcome.steps,
    )


# -- helpers ------------------------------------------------------------------------------------


def _elapsed_seconds(task: Task) -> float:
    return seconds_since(task.redriven_at or task.started_at)  # a redrive gives the flow's timeout a fresh start


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


# -- the other calls of the loop ------------------------------------------------------------------


def poll_check(
    task_id: str, remaining_ms: Callable[[], int], execution_arn: str | None = None, rounds: int = 0
) -> Answer:
    """PollCheck: one more check of the poll the task is in, recorded; when it ends, go on right here."""
    repo = TaskRepository()
    task = load_task(repo, task_id)
    pending = task.step_state
    if task.is_final or not pending or pending.get("kind") != StepStateKind.POLL or pending.get("outcome"):
        return process_steps(task_id, remaining_ms, execution_arn=execution_arn, rounds=rounds)  # nothing to check
    step_id = pending["stepId"]
    step = load_flow(task).steps[step_id]
    progress = poll_progress(step_id, step, copy.deepcopy(task.context), pending["attempts"] + 1)
    task = repo.save(task, step_state=progress)
    log.info("poll checked", extra={"taskId": task_id, "stepId": step_id, "attempts": progress["attempts"]})
    if progress.get("outcome") is None:
        handover = hand_over_if_history_is_long(task, execution_arn, rounds)  # a long poll grows the history too
        if handover is not None:
            return handover
        seconds = poll_seconds(step, progress["attempts"])
        return {"taskId": task_id, "action": Action.POLL, "stepId": step_id, "seconds": seconds}
    return process_steps(task_id, remaining_ms, execution_arn=execution_arn, rounds=rounds)


def finalize_failure(task_id: str, error: dict[str, Any], execution_arn: str | None = None) -> Answer:
    """Record the normalized error the state machine built for a failure outside any step.

    The Finalize of an execution the task left behind (a redrive runs it in a new one) records
    nothing: the task is the newer execution's now."""
    repo = TaskRepository()
    task = repo.get(task_id)  # unlike the loop's calls, a task that is gone is no new failure
    if task is None:
        return {"taskId": task_id, "action": Action.FAILED, "error": error}
    error = {**error, "stepId": error.get("stepId") or task.current_step, "branchId": task.branch_id}
    if task.is_final:
        return {"taskId": task_id, "action": Action.FAILED, "error": task.error or error}
    if not same_execution(task.execution_arn, execution_arn):
        log.info("finalize of an older execution", extra={"taskId": task_id, "executionArn": execution_arn})
        return {"taskId": task_id, "action": Action.FAILED, "error": error}
    repo.save(task, status="FAILED", error=error)
    log.warning("task failed outside a step", extra={"taskId": task_id, "error": error})
    return {"taskId": task_id, "action": Action.FAILED, "error": error}
