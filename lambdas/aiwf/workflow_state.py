"""The WorkflowState as the GraphQL API shows it: read from the tables, or from a stream image.

AWSJSON fields (`output`, `waitingFor`, `error.errorDetails`) leave as JSON text, the form
AppSync sends to clients, so a query, a history entry and a subscription message carry the same
bytes for one state.
"""

from __future__ import annotations

import json
from typing import Any

from .answers import INLINE_VALUE_BYTES, PageBudget, json_size, public_state
from .repository import TaskRepository, _deserialize

_SCALARS = ("taskId", "flowId", "flowVersion", "status", "seq", "currentStep", "branchId", "startedAt", "updatedAt")


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def as_graphql(state: dict[str, Any]) -> dict[str, Any]:
    """A `Task.state()` (plain values) with its AWSJSON fields as JSON text."""
    shown: dict[str, Any] = {name: state.get(name) for name in _SCALARS}
    shown["waitingFor"] = _json_text(state.get("waitingFor"))
    shown["output"] = _json_text(state.get("output"))
    error = state.get("error")
    if isinstance(error, dict):
        error = {**error, "errorDetails": _json_text(error.get("errorDetails"))}
    shown["error"] = error
    return shown


def graphql_state(item: dict[str, Any], inline_bytes: int = 0) -> dict[str, Any]:
    """A deserialized task or history item as a `WorkflowState` (no context, no token, ever).

    A parallel branch's record shows its parent's `taskId` (with its own `branchId` and `seq`),
    as `Task.state()` does, so a subscriber to the task sees its branches' progress too. Large
    values are references (see answers.py) unless they fit `inline_bytes`.
    """
    return as_graphql(public_state(item, inline_bytes=inline_bytes))


def state_from_image(image: dict[str, Any]) -> dict[str, Any]:
    """A stream record's NewImage (DynamoDB JSON) as a `WorkflowState`; large values as references,
    so a published state stays within AppSync's subscription payload limit."""
    return graphql_state(_deserialize(image))


def is_state_change(record: dict[str, Any]) -> bool:
    """INSERT/MODIFY with a new image; a MODIFY that kept `seq` (bookkeeping) is not a state change."""
    change = record.get("dynamodb") or {}
    if record.get("eventName") not in ("INSERT", "MODIFY") or "NewImage" not in change:
        return False
    old_seq = (change.get("OldImage") or {}).get("seq")
    return old_seq is None or old_seq != change["NewImage"].get("seq")


def get_state(task_id: str) -> dict[str, Any] | None:
    item = TaskRepository().get_item(task_id)
    return graphql_state(item, INLINE_VALUE_BYTES) if item is not None else None


def history_after(task_id: str, after_seq: int | None) -> list[dict[str, Any]]:
    """Recorded states of a task with seq > `after_seq`, in seq order: how a listener fills a gap.

    One answer holds at most `PAGE_BUDGET_BYTES` of states: when it ends early, ask again with
    `afterSeq` set to the last seq received."""
    states, _ = TaskRepository().history_page(
        task_id, after_seq=after_seq, show=graphql_state, admit=PageBudget(json_size).admit
    )
    return states
