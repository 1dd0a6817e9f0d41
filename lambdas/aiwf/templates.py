"""Templates in flow documents, rendered from the task context by a sandboxed Jinja engine.

A string that is exactly one `{{ expression }}` yields the expression's native value (a list
stays a list); any other string renders to text. Nothing is ever passed to `eval`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from .errors import StepError


class _ContextEnvironment(SandboxedEnvironment):
    """`input.items` means the key `items` of a JSON object, never the dict method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_ENV = _ContextEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.filters["tojson"] = lambda value: json.dumps(value, separators=(",", ":"), default=str)
_SINGLE_EXPRESSION = re.compile(r"^\{\{\s*(.+?)\s*\}\}$", re.DOTALL)


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render every string inside `value` (recursively) against `context`."""
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context) for item in value]
    return value


def _render_string(text: str, context: dict[str, Any]) -> Any:
    if "{{" not in text and "{%" not in text:
        return text
    try:
        single = _SINGLE_EXPRESSION.match(text)
        if single and "}}" not in single.group(1):
            return _ENV.compile_expression(single.group(1), undefined_to_none=False)(**context)
        return _ENV.from_string(text).render(**context)
    except TemplateError as exc:
        raise StepError("TemplateError", f"cannot render template {text!r}: {exc}", details={"template": text}) from exc
