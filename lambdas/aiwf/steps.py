"""Inline step types: each takes the step document and the task context and says what comes next.

Inline steps run inside the ProcessSteps invocation, one after another, so a run of them
costs one Lambda call and a couple of state transitions rather than a loop per step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import StepError, normalized_error
from .http_client import call_http
from .llm import call_llm
from .paths import MISSING, get_path, lookup, set_path
from .patterns import PatternError, search
from .step_handlers import load_handlers
from .templates import render


@dataclass(frozen=True)
class StepOutcome:
    """`next` to go on; `output` to succeed; `error` to fail. `context` is the updated context.

    A native step (wait, poll, parallel) instead answers with an `action` for the state
    machine's Route, optionally with a `status` and the `step_state` it keeps meanwhile.
    """

    context: dict[str, Any]
    next: str | None = None
    succeeded: bool = False
    output: Any = None
    error: dict[str, Any] | None = field(default=None)
    action: dict[str, Any] | None = None
    status: str | None = None
    step_state: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None  # an llm step's token usage, recorded per step
    steps: int = 1  # steps it counts against `maxSteps`: a parallel step adds its branches' steps


def result_path(step_id: str, step: dict[str, Any]) -> str:
    """Where a step's result lands: its `resultPath`, or its own id when it names none."""
    return step.get("resultPath") or step_id


def _transform(step_id: str, step: dict[str, Any], context: dict[str, Any]) -> StepOutcome:
    value = render(step["value"], context)
    return StepOutcome(context=set_path(context, result_path(step_id, step), value), next=step["next"])


def call_task_handler(config: dict[str, Any], context: dict[str, Any], step_id: str) -> Any:
    """Run the registered Python handler `config["handler"]` on the rendered `input`."""
    handler = load_handlers().get(config["handler"])
    if handler is None:
        raise StepError("UnknownHandler", f"no step handler named {config['handler']!r} is registered")
    payload = render(config["input"], context) if "input" in config else context
    try:
        return handler(payload, task_id=context.get("taskId"), step_id=step_id)
    except StepError:
        raise
    except Exception as exc:  # a user handler's bug fails the step, not the orchestrator
        raise StepError(
            type(exc).__name__, str(exc) or type(exc).__name__, details={"handler": config["handler"]}
        ) from exc


def _http(step_id: str, step: dict[str, Any], context: dict[str, Any]) -> StepOutcome:
    result = call_http(step, context)
    return StepOutcome(context=set_path(context, result_path(step_id, step), result), next=step["next"])


def _task(step_id: str, step: dict[str, Any], context: dict[str, Any]) -> StepOutcome:
    result = call_task_handler(step, context, step_id)
    return StepOutcome(context=set_path(context, result_path(step_id, step), result), next=step["next"])


def _llm(step_id: str, step: dict[str, Any], context: dict[str, Any]) -> StepOutcome:
    result, usage = call_llm(step, context)
    return StepOutcome(context=set_path(context, result_path(step_id, step), result), next=step["next"], usage=usage)


def matches(condition: dict[str, Any], context: Any) -> bool:
    """Whether a choice condition (or a poll's `until`) holds; a condition that cannot be evaluated
    (a `matches` pattern that is not RE2 syntax, in a flow registered before patterns were
    checked) is the step error `InvalidCondition`."""
    try:
        return _holds(condition, context)
    except PatternError as exc:
        raise StepError(
            "InvalidCondition",
            f"the pattern {condition.get('matches')!r} of the condition on {condition['path']!r} "
            f"is not a valid regular expression (RE2 syntax): {exc}",
            details={"path": condition["path"], "pattern": condition.get("matches")},
        ) from None
    except (TypeError, ValueError) as exc:
        raise StepError(
            "InvalidCondition",
            f"the condition on {condition['path']!r} cannot compare the value found there: {exc}",
            details={"path": condition["path"]},
        ) from None


def _holds(condition: dict[str, Any], context: Any) -> bool:
    value = lookup(context, condition["path"])
    present = value is not MISSING
    if "isPresent" in condition:
        return present == condition["isPresent"]
    if not present:
        return False
    if "equals" in condition:
        return value == condition["equals"]
    if "notEquals" in condition:
        return value != condition["notEquals"]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if "greaterThan" in condition:
        return numeric and value > condition["greaterThan"]
    if "lessThan" in condition:
        return numeric and value < condition["lessThan"]
    if "matches" in condition:
        return isinstance(value, str) and search(condition["matches"], value)
    return False


def _choice(step_id: str, step: dict[str, Any], context: dict[str, Any]) -> StepOutcome:
    for condition in step["choices"]:
        if matches(condition, context):
            return StepOutcome(context=context, next=condition["next"])
    if "default" in step:
        return StepOutcome(context=context, next=step["default"])
    raise StepError("NoChoiceMatched", f"no choice of step {step_id!r} matched and it has no default")


def _succeed(step_id: str, step: dict[str, Any], context: dict[str, Any]) -> StepOutcome:
    output = get_path(context, step["outputPath"]) if "outputPath" in step else context
    return StepOutcome(context=context, succeeded=True, output=output)


def _fail(step_id: str, step: dict[str, Any], context: dict[str, Any]) -> StepOutcome:
    cause = render(step.get("cause", step["error"]), context)
    return StepOutcome(context=context, error=normalized_error(step["error"], str(cause), step_id=step_id))


INLINE_STEPS: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], StepOutcome]] = {
    "transform": _transform,
    "choice": _choice,
    "succeed": _succeed,
    "fail": _fail,
    "http": _http,
    "task": _task,
    "llm": _llm,
}
