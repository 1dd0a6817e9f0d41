"""Native step types: steps that hand control to a state of the state machine and come back.

ProcessSteps calls them like inline steps, with one more argument: the `step_state` a native
state left on the task for this step (a resume's outcome, a poll's progress), or None the first
time. Without a finished outcome they answer with an `action` for Route; with one they go on
(or fail) like any inline step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .branches import fork, gather
from .errors import StepError
from .http_client import call_http
from .paths import set_path
from .protocol import Action, StepStateKind
from .repository import Task
from .steps import StepOutcome, call_task_handler, matches, result_path


def _wait_for_event(
    step_id: str, step: dict[str, Any], context: dict[str, Any], pending: dict[str, Any] | None, task: Task
) -> StepOutcome:
    if pending is None or pending.get("kind") != StepStateKind.RESUME:
        action: dict[str, Any] = {"action": Action.WAIT, "stepId": step_id, "timeoutSeconds": step["timeoutSeconds"]}
        if "heartbeatSeconds" in step:
            action["heartbeatSeconds"] = step["heartbeatSeconds"]
        return StepOutcome(context=context, action=action)
    if pending["status"] == "FAILED":
        error = pending["error"]  # normalized, defaults included, by callbacks.resume_task
        raise StepError(error["errorName"], error["errorMessage"], details=error["errorDetails"])
    return StepOutcome(context=set_path(context, result_path(step_id, step), pending.get("output")), next=step["next"])


def run_check(step_id: str, step: dict[str, Any], context: dict[str, Any]) -> Any:
    """One poll check: the inline `check` step config (http or task) run against the context."""
    check = step["check"]
    if check["type"] == "http":
        return call_http(check, context)
    return call_task_handler(check, context, step_id)


def poll_seconds(step: dict[str, Any], attempts: int) -> int:
    """Seconds to wait after `attempts` checks: intervalSeconds * backoffRate^(attempts-1), whole."""
    return round(step["intervalSeconds"] * step.get("backoffRate", 1) ** (attempts - 1))


def poll_progress(step_id: str, step: dict[str, Any], context: dict[str, Any], attempts: int) -> dict[str, Any]:
    """Run check number `attempts`; the poll's step_state: outcome done / error / exhausted, or none yet."""
    state: dict[str, Any] = {"kind": StepStateKind.POLL, "stepId": step_id, "attempts": attempts}
    try:
        result = run_check(step_id, step, context)
        done = matches(step["until"], result)  # `until.path` reads the check's result
    except StepError as exc:
        return {**state, "outcome": "error", "error": [exc.error_name, exc.message, exc.details, exc.retryable]}
    if done:
        return {**state, "outcome": "done", "result": result}
    if attempts >= step["maxAttempts"]:
        return {**state, "outcome": "exhausted", "result": result}
    return {**state, "result": result}


def _poll(
    step_id: str, step: dict[str, Any], context: dict[str, Any], pending: dict[str, Any] | None, task: Task
) -> StepOutcome:
    if pending is None or pending.get("kind") != StepStateKind.POLL:
        pending = poll_progress(step_id, step, context, attempts=1)  # the first check runs right away
    outcome = pending.get("outcome")
    if outcome is None:
        attempts = pending["attempts"]
        return StepOutcome(
            context=context,
            action={"action": Action.POLL, "stepId": step_id, "seconds": poll_seconds(step, attempts)},
            status="POLLING",
            step_state=pending,
        )
    if outcome == "error":
        name, message, details, retryable = pending["error"]
        raise StepError(name, message, details=details, retryable=retryable)
    if outcome == "exhausted":
        raise StepError(
            "PollTimeout",
            f"the condition of step {step_id!r} did not hold after {pending['attempts']} checks",
            details={"attempts": pending["attempts"], "lastResult": pending.get("result")},
        )
    return StepOutcome(context=set_path(context, result_path(step_id, step), pending["result"]), next=step["next"])


def _parallel(
    step_id: str, step: dict[str, Any], context: dict[str, Any], pending: dict[str, Any] | None, task: Task
) -> StepOutcome:
    if pending is None or pending.get("kind") != StepStateKind.PARALLEL:
        record_ids = fork(task, step_id, step, context)
        return StepOutcome(
            context=context,
            action={
                "action": Action.PARALLEL,
                "stepId": step_id,
                "maxConcurrency": step.get("maxConcurrency", 0),
                "branches": record_ids,
            },
            step_state={"kind": StepStateKind.PARALLEL, "stepId": step_id, "branches": record_ids},
        )
    rerun = pending.get("rerun")
    if rerun:  # a redrive reset the failed branches: the Map runs those again, the others keep their end
        return StepOutcome(
            context=context,
            action={
                "action": Action.PARALLEL,
                "stepId": step_id,
                "maxConcurrency": step.get("maxConcurrency", 0),
                "branches": rerun,
            },
            step_state={key: value for key, value in pending.items() if key != "rerun"},
        )
    results, first_error, branch_steps_run = gather(pending["branches"], task.steps_run)
    if first_error is not None and step.get("onBranchError", "fail") == "fail":
        raise StepError(
            first_error["errorName"],
            first_error["errorMessage"],
            details=first_error.get("errorDetails"),
            retryable=bool(first_error.get("retryable")),
            branch_id=first_error.get("branchId"),
        )
    return StepOutcome(
        context=set_path(context, result_path(step_id, step), results), next=step["next"], steps=1 + branch_steps_run
    )


NativeStep = Callable[[str, dict[str, Any], dict[str, Any], dict[str, Any] | None, Task], StepOutcome]
NATIVE_STEPS: dict[str, NativeStep] = {
    "wait_for_event": _wait_for_event,
    "poll": _poll,
    "parallel": _parallel,
}
