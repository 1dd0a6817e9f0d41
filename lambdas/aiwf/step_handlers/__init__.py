"""Custom Python steps: the `task` step type calls a handler registered here by name.

Add a module to this package and decorate a function::

    @step_handler("word_count")
    def word_count(payload, *, task_id, step_id):
        return {"words": len(payload["text"].split())}

`payload` is the step's `input` rendered from the task context (the whole context without it);
the return value (any JSON value) lands at the step's `resultPath`. Raise `StepError` for a
failure with your own name; any other exception fails the step with its class name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

StepHandler = Callable[..., Any]
HANDLERS: dict[str, StepHandler] = {}


def step_handler(name: str) -> Callable[[StepHandler], StepHandler]:
    def register(function: StepHandler) -> StepHandler:
        if name in HANDLERS and HANDLERS[name] is not function:
            raise ValueError(f"step handler {name!r} is registered twice")
        HANDLERS[name] = function
        return function

    return register


def load_handlers() -> dict[str, StepHandler]:
    """Import every module of this package once, so their decorators register."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return HANDLERS
