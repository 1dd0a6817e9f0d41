"""The WorkflowState as the GraphQL API shows it: read from the tables, or from a stream image.

AWSJSON fields (`output`, `waitingFor`, `error.errorDetails`) leave as JSON text, the form
AppSync sends to clients, so a query, a history entry and a subscription message carry the same
bytes for one state.
"""

from __future__ import annotations

import json
from typing import Any

from . import payloads
from .aws import client
from .repository import _deserialize
from .settings import get_settings

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


def graphql_state(item: dict[str, Any]) -> dict[str, Any]:
    """A deserialized task or history item as a `WorkflowState` (no context, no token, ever).

    A parallel branch's record shows its parent's `taskId` (with its own `branchId` and `seq`),
    as `Task.state()` does, so a subscriber to the task sees its branches' progress too.
    """
    values = {name: payloads.decode(item, name) for name in ("waitingFor", "output", "error")}
    if isinstance(item.get("branchOf"), str):
        values["taskId"] = json.loads(item["branchOf"]).get("taskId", item["taskId"])
    return as_graphql({**item, **values})


def state_from_image(image: dict[str, Any]) -> dict[str, Any]:
    """A stream record's NewImage (DynamoDB JSON) as a `WorkflowState`."""
    return graphql_state(_deserialize(image))


def is_state_change(record: dict[str, Any]) -> bool:
    """INSERT/MODIFY with a new image; a MODIFY that kept `seq` (bookkeeping) is not a state change."""
    change = record.get("dynamodb") or {}
    if record.get("eventName") not in ("INSERT", "MODIFY") or "NewImage" not in change:
        return False
    old_seq = (change.get("OldImage") or {}).get("seq")
    return old_seq is None or old_seq != change["NewImage"].get("seq")


def get_state(task_id: str) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(
        TableName=get_settings().tasks_table, Key={"taskId": {"S": task_id}}, ConsistentRead=True
    )
    return graphql_state(_deserialize(item["Item"])) if "Item" in item else None


def history_after(task_id: str, after_seq: int | None) -> list[dict[str, Any]]:
    """Every recorded state of a task with seq > `after_seq`, in seq order: how a listener fills a gap."""
    query: dict[str, Any] = {
        "TableName": get_settings().history_table,
        "KeyConditionExpression": "taskId = :t",
        "ExpressionAttributeValues": {":t": {"S": task_id}},
        "ConsistentRead": True,
    }
    if after_seq is not None:
        query["KeyConditionExpression"] += " AND seq > :s"
        query["ExpressionAttributeValues"][":s"] = {"N": str(after_seq)}
    states: list[dict[str, Any]] = []
    while True:
        page = client("dynamodb").query(**query)
        states.extend(graphql_state(_deserialize(item)) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return states
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
