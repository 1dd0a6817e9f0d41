"""Example step handlers shipped with the project (see docs in the package's __init__)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import StepError
from . import step_handler


@step_handler("word_count")
def word_count(payload: Any, *, task_id: str, step_id: str) -> dict[str, Any]:
    """Count the words of `payload.text`."""
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise StepError("InvalidInput", "word_count needs an input object with a string `text`")
    return {"words": len(text.split()), "characters": len(text)}


@step_handler("slugify")
def slugify(payload: Any, *, task_id: str, step_id: str) -> str:
    """A URL-safe slug of a string."""
    if not isinstance(payload, str):
        raise StepError("InvalidInput", "slugify needs a string input")
    return re.sub(r"[^a-z0-9]+", "-", payload.lower()).strip("-")
