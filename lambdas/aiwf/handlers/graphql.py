"""Workflow State API queries: one AppSync direct Lambda resolver for every Query field.

AppSync sends `{arguments, identity, source, request, info: {parentTypeName, fieldName, ...}}`;
what the function returns becomes the field's value, and an exception becomes a GraphQL error
whose `errorType` is the exception's type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from ..answers import INLINE_VALUE_BYTES, PageBudget, json_size
from ..control import redrive_task
from ..errors import ApiError, BadRequest
from ..repository import TaskRepository
from ..workflow_state import as_graphql, graphql_state

logger = Logger(service="graphql-resolver")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


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


def _get_state(arguments: dict[str, Any]) -> dict[str, Any] | None:
    return get_state(arguments["taskId"])


def _list_states(arguments: dict[str, Any]) -> dict[str, Any]:
    limit = arguments.get("limit") or DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    items, token = TaskRepository().list_page(
        status=arguments.get("status"),
        flow_id=arguments.get("flowId"),
        limit=limit,
        next_token=arguments.get("nextToken"),
        show=graphql_state,
        admit=PageBudget(json_size).admit,
    )
    return {"items": items, "nextToken": token}


def _history(arguments: dict[str, Any]) -> list[dict[str, Any]]:
    return history_after(arguments["taskId"], arguments.get("afterSeq"))


FIELDS: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("Query", "getWorkflowState"): _get_state,
    ("Query", "listWorkflowStates"): _list_states,
    ("Query", "getWorkflowHistory"): _history,
}


# -- Mutation.redriveTask: the same domain function as POST /tasks/{taskId}/redrive ---------------
def _redrive_task(arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        return as_graphql(redrive_task(arguments["taskId"]).state())
    except ApiError as exc:
        # The REST code names the error (the exception's type, and first in its message: a direct
        # Lambda resolver's errors reach clients as errorType "Lambda:Unhandled" with the message).
        raise type(exc.code, (Exception,), {})(f"{exc.code}: {exc.message}") from exc


CONTROL_FIELDS: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {("Mutation", "redriveTask"): _redrive_task}


@logger.inject_lambda_context(clear_state=True)
def control_handler(event: dict[str, Any], context: Any) -> Any:
    """The control function's resolver (graphql-control): the mutations that change tasks."""
    return _resolve(CONTROL_FIELDS, event)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> Any:
    return _resolve(FIELDS, event)


def _resolve(fields: dict[tuple[str, str], Callable[[dict[str, Any]], Any]], event: dict[str, Any]) -> Any:
    info = event.get("info") or {}
    field = (info.get("parentTypeName"), info.get("fieldName"))
    resolve = fields.get(field)  # type: ignore[arg-type]
    if resolve is None:
        raise BadRequest(f"no resolver for {field[0]}.{field[1]}")
    logger.debug("resolve", extra={"field": f"{field[0]}.{field[1]}", "arguments": event.get("arguments")})
    return resolve(event.get("arguments") or {})
