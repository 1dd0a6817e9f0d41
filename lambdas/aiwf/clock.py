"""Timestamps in one format everywhere: ISO 8601 UTC with microseconds, sortable as text."""

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
