"""Templates in flow documents, rendered from the task context by a sandboxed Jinja engine.

A string that is exactly one `{{ expression }}` yields the expression's native value (a list
stays a list); any other string renders to text. Nothing is ever passed to `eval`.

Whatever goes wrong inside a template, the step fails with an error written for the flow's
author, never with a Python exception's name: `TemplateError` (what went wrong, in plain words,
and the template), `TemplateOutputTooLarge` (the render would pass the size limit) or
`TemplateTimeout` (the render ran past `settings.template_ms()`; not retryable, as the
same template on the same context would run as long again). One call of `render` is one
render: every string inside the value shares its time limit.
"""

from __future__ import annotations

import re
import time
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SecurityError

from .errors import StepError
from .runtime_limits import TEMPLATE_OUTPUT_MAX_BYTES, json_size
from .settings import template_ms
from .template_sandbox import (
    BoundedSandbox,
    TemplateTimedOut,
    TemplateTooLarge,
    deadline_active,
    estimated_size,
    rendering_until,
)

_ENV = BoundedSandbox()
_SINGLE_EXPRESSION = re.compile(r"^\{\{\s*(.+?)\s*\}\}$", re.DOTALL)
_SHOWN_CHARS = 200  # of the template, in messages
_KEPT_CHARS = 2_000  # of the template, in errorDetails


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render every string inside `value` (recursively) against `context`, within the time limit."""
    if deadline_active():
        return _render_value(value, context)
    with rendering_until(time.monotonic() + template_ms() / 1000):
        return _render_value(value, context)


def _render_value(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, dict):
        return {key: _render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, context) for item in value]
    return value


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages that must not speak Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a value that is not JSON"


def _render_string(text: str, context: dict[str, Any]) -> Any:
    if "{{" not in text and "{%" not in text:
        return text
    try:
        single = _SINGLE_EXPRESSION.match(text)
        if single and "}}" not in single.group(1):
            result = _ENV.compile_expression(single.group(1), undefined_to_none=False)(**context)
        else:
            result = _ENV.from_string(text).render(**context)
        _check_rendered_size(result)
        return result
    except StepError:
        raise
    except TemplateTooLarge as exc:
        raise StepError(
            "TemplateOutputTooLarge",
            f"template {_shown(text)} would produce too much: {exc}",
            details={"template": text[:_KEPT_CHARS], "limitBytes": TEMPLATE_OUTPUT_MAX_BYTES},
        ) from None
    except TemplateTimedOut:
        limit = template_ms()
        raise StepError(
            "TemplateTimeout",
            f"template {_shown(text)} ran past the time limit of {limit} ms",
            details={"template": text[:_KEPT_CHARS], "limitMs": limit},
        ) from None
    except Exception as exc:  # every other failure inside the sandbox is the template's fault
        raise StepError(
            "TemplateError",
            f"cannot render template {_shown(text)}: {_plain_reason(exc)}",
            details={"template": text[:_KEPT_CHARS]},
        ) from None


def _check_rendered_size(result: Any) -> None:
    """The rendered value, measured exactly: UTF-8 bytes of text, or of the JSON of a value."""
    if isinstance(result, str):
        size = len(result.encode("utf-8", errors="replace"))
    else:  # an estimate far over the limit is enough; near it, the exact JSON size decides
        estimate = estimated_size(result, 4 * TEMPLATE_OUTPUT_MAX_BYTES)
        size = estimate if estimate > 4 * TEMPLATE_OUTPUT_MAX_BYTES else json_size(result)
    if size > TEMPLATE_OUTPUT_MAX_BYTES:
        limit = TEMPLATE_OUTPUT_MAX_BYTES
        raise TemplateTooLarge(f"the rendered value is {size} bytes, over the limit of {limit} bytes")


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def _plain_reason(exc: BaseException) -> str:
    """What went wrong, in words a flow author can act on (no Python exception class names)."""
    detail = str(exc).strip()
    if isinstance(exc, UndefinedError):
        return f"{detail or 'a name is undefined'} (check the name against the task context)"
    if isinstance(exc, SecurityError):
        return f"the template sandbox does not allow this ({detail})"
    if isinstance(exc, TemplateSyntaxError):
        return f"the template is not valid syntax on line {exc.lineno}: {exc.message}"
    if isinstance(exc, TemplateError):
        return detail or "the template could not be rendered"
    if isinstance(exc, ZeroDivisionError):
        return "it divides by zero"
    if isinstance(exc, OverflowError):
        return "a number is too large to compute"
    if isinstance(exc, RecursionError):
        return "it nests or recurses too deeply"
    if isinstance(exc, MemoryError):
        return "it needs more memory than a template may use"
    if isinstance(exc, TypeError):
        return f"a value has the wrong type for this operation ({detail})"
    if isinstance(exc, KeyError | IndexError):
        return f"an item it reads does not exist ({detail})"
    if isinstance(exc, ValueError):
        return f"a value is not valid here ({detail})"
    if isinstance(exc, AttributeError):
        return f"an attribute it reads does not exist ({detail})"
    return f"it failed ({detail})" if detail else "it failed"
