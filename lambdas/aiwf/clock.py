"""Timestamps in one format everywhere: ISO 8601 UTC with microseconds, sortable as text."""

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def seconds_since(timestamp: str) -> float:
    """Seconds from an ISO 8601 timestamp (ours, or Step Functions' `$$.Execution.StartTime`) to now."""
    return (datetime.now(UTC) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
