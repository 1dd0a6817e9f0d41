"""Native step types: steps that hand control to a state of the state machine and come back.

ProcessSteps calls them like inline steps, with one more argument: the `step_state` a native
state left on the task for this step (a resume's outcome, a poll's progress), or None the first
time. Without a finished outcome they answer with an `action` for Route; with one they go on
(or fail) like any inline step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import StepError
from .paths import set_path
from .steps import StepOutcome, result_path

RESUMED_WITH_FAILURE = "ResumedWithFailure"


def _wait_for_event(
    step_id: str, step: dict[str, Any], context: dict[str, Any], pending: dict[str, Any] | None
) -> StepOutcome:
    if pending is None or pending.get("kind") != "resume":
        action: dict[str, Any] = {"action": "WAIT", "stepId": step_id, "timeoutSeconds": step["timeoutSeconds"]}
        if "heartbeatSeconds" in step:
            action["heartbeatSeconds"] = step["heartbeatSeconds"]
        return StepOutcome(context=context, action=action)
    if pending["status"] == "FAILED":
        error = pending.get("error") or {}
        raise StepError(
            error.get("errorName") or RESUMED_WITH_FAILURE,
            error.get("errorMessage") or "the external system reported a failure",
            details=error.get("errorDetails"),
        )
    return StepOutcome(context=set_path(context, result_path(step_id, step), pending.get("output")), next=step["next"])


NativeStep = Callable[[str, dict[str, Any], dict[str, Any], dict[str, Any] | None], StepOutcome]
NATIVE_STEPS: dict[str, NativeStep] = {
    "wait_for_event": _wait_for_event,
}
