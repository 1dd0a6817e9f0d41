"""The WorkflowState as the GraphQL API shows it, from a stored item or a stream image.

A view only formats: the repository reads (handlers/graphql.py asks it, then formats here).
AWSJSON fields (`output`, `waitingFor`, `error.errorDetails`) leave as JSON text, the form
AppSync sends to clients, so a query, a history entry and a subscription message carry the same
bytes for one state.
"""

from __future__ import annotations

import json
from typing import Any

from .answers import public_state
from .repository import item_from_image

_SCALARS = (
    "taskId",
    "flowId",
    "flowVersion",
    "status",
    "seq",
    "currentStep",
    "branchId",
    "startedAt",
    "updatedAt",
    "redriveCount",
    "tenantId",
)


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
    return graphql_state(item_from_image(image))


def is_state_change(record: dict[str, Any]) -> bool:
    """INSERT/MODIFY with a new image; a MODIFY that kept `seq` (bookkeeping) is not a state change."""
    change = record.get("dynamodb") or {}
    if record.get("eventName") not in ("INSERT", "MODIFY") or "NewImage" not in change:
        return False
    old_seq = (change.get("OldImage") or {}).get("seq")
    return old_seq is None or old_seq != change["NewImage"].get("seq")
