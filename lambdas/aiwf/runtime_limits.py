"""Flow runtime limits: how many steps a task may run and how large what it builds may grow.

A flow is data written by users, so nothing in it may make a task run or grow without end: a
`choice` loop that never exits, a template that repeats a string twenty million times, a step
that writes megabytes into the context. Each limit fails the step with a normalized error that
names the limit, so the task ends FAILED (or the flow's `catch` handles it) instead of running
until a quota of the platform stops it with an error nobody can act on.

The step budget is counted in the task record (`Task.steps_run`), so it holds across Lambda
invocations, continuations into fresh executions and redrives. Branch records of a `parallel`
step start from the parent's count and share its budget: the parent adds the steps its
branches ran when it gathers them (`StepOutcome.steps`).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import StepError, normalized_error

# Steps a task may run when its flow sets no `maxSteps`, and the most a flow may set.
DEFAULT_MAX_STEPS = 10_000
MAX_STEPS_CAP = 100_000
# One rendered template (a string, or the JSON of a rendered value).
TEMPLATE_OUTPUT_MAX_BYTES = 1_048_576
# The JSON of the value one step writes at its resultPath.
RESULT_MAX_BYTES = 1_048_576
# The JSON of the whole task context after a step.
CONTEXT_MAX_BYTES = 4_194_304


def max_steps(flow: dict[str, Any]) -> int:
    """The flow's step budget: its `maxSteps`, else the default, never above the cap."""
    declared = flow.get("maxSteps")
    if not isinstance(declared, int) or isinstance(declared, bool) or declared < 1:
        return DEFAULT_MAX_STEPS
    return min(declared, MAX_STEPS_CAP)


def step_limit_error(
    flow: dict[str, Any], steps_run: int, step_id: str, branch_id: str | None
) -> dict[str, Any] | None:
    """The normalized `StepLimitExceeded` error when the task may not start `step_id`, else None."""
    limit = max_steps(flow)
    if steps_run < limit:
        return None
    return normalized_error(
        "StepLimitExceeded",
        f"the task ran {steps_run} steps, its limit of {limit} steps (maxSteps), and did not start step {step_id!r}",
        details={"maxSteps": limit, "stepsRun": steps_run},
        step_id=step_id,
        branch_id=branch_id,
    )


def json_size(value: Any) -> int:
    """Bytes of `value` as stored: compact JSON in UTF-8, as the claim checks write it."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


def check_step_output(step_id: str, result: Any, has_result: bool, context: dict[str, Any]) -> None:
    """Raise `ResultTooLarge` / `ContextTooLarge` when a step's result or the new context is over its limit.

    The result is part of the context, so it is measured on its own only when the context is
    larger than a result may be: one JSON encoding per step in the common case.
    """
    context_size = json_size(context)
    if has_result and context_size > RESULT_MAX_BYTES:
        size = json_size(result)
        if size > RESULT_MAX_BYTES:
            raise StepError(
                "ResultTooLarge",
                f"step {step_id!r} produced a result of {size} bytes, over the limit of {RESULT_MAX_BYTES} bytes",
                details={"limitBytes": RESULT_MAX_BYTES, "sizeBytes": size},
            )
    size = context_size
    if size > CONTEXT_MAX_BYTES:
        raise StepError(
            "ContextTooLarge",
            f"after step {step_id!r} the task context would be {size} bytes, "
            f"over the limit of {CONTEXT_MAX_BYTES} bytes",
            details={"limitBytes": CONTEXT_MAX_BYTES, "sizeBytes": size},
        )
