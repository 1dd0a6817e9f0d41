"""Dotted paths into the task context (`doc.text`, `branches.0.output`)."""

from __future__ import annotations

from typing import Any

MISSING = object()


def get_path(data: Any, path: str, default: Any = None) -> Any:
    value = lookup(data, path)
    return default if value is MISSING else value


def lookup(data: Any, path: str) -> Any:
    """Return the value at `path`, or the `MISSING` sentinel; list items by index."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Write `value` at `path`, creating objects on the way; returns `data` for chaining."""
    parts = path.split(".")
    current = data
    for part in parts[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            child = {}
            current[part] = child
        current = child
    current[parts[-1]] = value
    return data
