"""Workflow State API resolvers, two functions with their own roles.

`handler` (graphql-resolver, read-only): the state queries, direct Lambda resolvers. AppSync sends
`{arguments, identity, source, request, info: {parentTypeName, fieldName, ...}}`; what the function
returns becomes the field's value, and an exception becomes a GraphQL error (`Lambda:Unhandled`).

`control_handler` (graphql-control): the task-control plane (`startTask`, `resumeTask`,
`cancelTask`, `redriveTask`, `getFlow`, `listFlows`, `putFlow`, `retireFlow`), calling the same domain functions
as the REST task API. Its resolvers are APPSYNC_JS code on the Lambda data source
(schema/resolvers/taskControl.js) that sends `{arguments, identity, info}` and turns the answer
`{"error": {code, message, details}}` into a GraphQL error whose `errorType` is the REST `code`
(a direct Lambda resolver would only say `Lambda:Unhandled`); `{"data": value}` is the field.

Both authorize every field the same way before it resolves: the caller (aiwf.callers, from the
event's `identity`) must be a kind the catalogue allows (FORBIDDEN), and a task another tenant
owns is one that does not exist (aiwf.tenancy): null or empty from a query, TASK_NOT_FOUND from
a mutation, absent from lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from .. import operations, tenancy
from ..answers import INLINE_VALUE_BYTES, PageBudget, json_size
from ..callbacks import resume_task
from ..callers import Caller, authorize
from ..control import cancel_task, redrive_task
from ..errors import ApiError, BadRequest, NotFound
from ..flow_documents import check_flow_id, checked_document
from ..flow_store import FlowStore, FlowVersion
from ..repository import TaskRepository
from ..tasks import start_task
from ..workflow_state import as_graphql, graphql_state

logger = Logger(service="graphql-resolver")
Resolve = Callable[[dict[str, Any], Caller], Any]


def get_state(task_id: str, caller: Caller) -> dict[str, Any] | None:
    item = tenancy.visible_item(caller, task_id)
    return graphql_state(item, INLINE_VALUE_BYTES) if item is not None else None


def history_after(task_id: str, after_seq: int | None, caller: Caller) -> list[dict[str, Any]]:
    """Recorded states of a task with seq > `after_seq`, in seq order: how a listener fills a gap.

    One answer holds at most `PAGE_BUDGET_BYTES` of states: when it ends early, ask again with
    `afterSeq` set to the last seq received. Another tenant's task has no history to show."""
    if tenancy.visible_item(caller, task_id) is None:
        return []
    states, _ = TaskRepository().history_page(
        task_id, after_seq=after_seq, show=graphql_state, admit=PageBudget(json_size).admit
    )
    return states


def _get_state(arguments: dict[str, Any], caller: Caller) -> dict[str, Any] | None:
    return get_state(arguments["taskId"], caller)


def _list_states(arguments: dict[str, Any], caller: Caller) -> dict[str, Any]:
    limit = operations.query_value("listTasks", "limit", arguments.get("limit"))
    items, token = TaskRepository().list_page(
        status=arguments.get("status"),
        flow_id=arguments.get("flowId"),
        limit=limit,
        next_token=arguments.get("nextToken"),
        show=graphql_state,
        admit=PageBudget(json_size).admit,
        tenant_id=tenancy.list_tenant(caller, arguments.get("tenantId")),
    )
    return {"items": items, "nextToken": token}


def _history(arguments: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    return history_after(arguments["taskId"], arguments.get("afterSeq"), caller)


def _fields(function: str, answers: dict[str, Resolve]) -> dict[tuple[str, str], tuple[str, Resolve]]:
    """`(type, field) -> (operation id, resolve)` for the catalogue operations whose field
    `function` resolves: the field's name comes from schema/operations.json, what answers it from
    `answers`."""
    served = operations.graphql_operations(function)
    if {op.id for op in served} != set(answers):
        raise RuntimeError(f"{function}: the catalogue serves {sorted(op.id for op in served)}, not {sorted(answers)}")
    return {(op.graphql["type"], op.graphql["field"]): (op.id, answers[op.id]) for op in served}  # type: ignore[index]


def _authorized(operation_id: str, event: dict[str, Any]) -> Caller:
    """The event's caller, if the catalogue lets its kind call the operation over GraphQL."""
    return authorize(operation_id, "graphql", Caller.from_appsync(event))


# Operation id -> what answers it on the read-only function (graphql-resolver).
FIELDS = _fields("graphql-resolver", {"getTask": _get_state, "listTasks": _list_states, "getTaskHistory": _history})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> Any:
    return _resolve(FIELDS, event)


def _resolve(fields: dict[tuple[str, str], tuple[str, Resolve]], event: dict[str, Any]) -> Any:
    info = event.get("info") or {}
    field = (info.get("parentTypeName"), info.get("fieldName"))
    found = fields.get(field)  # type: ignore[arg-type]
    if found is None:
        raise BadRequest(f"no resolver for {field[0]}.{field[1]}")
    operation_id, resolve = found
    caller = _authorized(operation_id, event)
    logger.debug("resolve", extra={"field": f"{field[0]}.{field[1]}", "arguments": event.get("arguments")})
    return resolve(event.get("arguments") or {}, caller)


# -- the task-control plane (graphql-control) ---------------------------------------------------
control_logger = Logger(service="graphql-control")


def _flow(flow: FlowVersion, store: FlowStore) -> dict[str, Any]:
    """A `Flow`: the version's document as JSON text, with its flow's head (retired, updatedAt)."""
    head = store.head(flow.flow_id)
    latest = head is not None and head.version == flow.version
    return {
        "flowId": flow.flow_id,
        "version": flow.version,
        "retired": bool(head and head.retired),
        "updatedAt": head.updated_at if head is not None and latest else flow.created_at,
        "document": json.dumps({**flow.document, "id": flow.flow_id}, separators=(",", ":")),
    }


def _start_task(arguments: dict[str, Any], caller: Caller) -> dict[str, Any]:
    request = operations.body_of_arguments("startTask", arguments)
    tenant_id = tenancy.start_tenant(caller, arguments.get("tenantId"))
    task, _ = start_task(request["flowId"], request.get("input", {}), request.get("name"), tenant_id=tenant_id)
    return as_graphql(task.state())


def _resume_task(arguments: dict[str, Any], _caller: Caller) -> dict[str, Any]:
    if arguments.get("error") is not None:  # an input object's omitted fields arrive as null
        arguments = {**arguments, "error": {k: v for k, v in arguments["error"].items() if v is not None}}
    request = operations.body_of_arguments("resumeTask", arguments)
    error = operations.resume_error(request)
    task = resume_task(arguments["taskId"], request["resumeToken"], request["status"], request.get("output"), error)
    return as_graphql(task.state())


def _cancel_task(arguments: dict[str, Any], _caller: Caller) -> dict[str, Any]:
    request = operations.body_of_arguments("cancelTask", arguments)
    task, _ = cancel_task(arguments["taskId"], request.get("reason"))
    return as_graphql(task.state())


def _redrive_task(arguments: dict[str, Any], _caller: Caller) -> dict[str, Any]:
    return as_graphql(redrive_task(arguments["taskId"]).state())


def _get_flow(arguments: dict[str, Any], _caller: Caller) -> dict[str, Any] | None:
    check_flow_id(arguments["flowId"])
    version = operations.query_value("getFlow", "version", arguments.get("version"))
    store = FlowStore()
    flow = store.get(arguments["flowId"], version)
    return _flow(flow, store) if flow is not None else None


def _list_flows(arguments: dict[str, Any], _caller: Caller) -> dict[str, Any]:
    limit = operations.query_value("listFlows", "limit", arguments.get("limit"))
    heads, token = FlowStore().list_page(limit, arguments.get("nextToken") or None)
    return {"items": [{**head.summary(), "document": None} for head in heads], "nextToken": token}


def _put_flow(arguments: dict[str, Any], _caller: Caller) -> dict[str, Any]:
    document = arguments.get("document")
    if isinstance(document, str):  # AWSJSON reaches resolvers parsed; a JSON text is accepted too
        try:
            document = json.loads(document)
        except ValueError:
            raise BadRequest("document is not JSON", code="INVALID_FLOW") from None
    store = FlowStore()
    flow, created = store.register(checked_document(document))
    control_logger.info("flow registered", extra={"flowId": flow.flow_id, "version": flow.version, "new": created})
    return _flow(flow, store)


def _retire_flow(arguments: dict[str, Any], _caller: Caller) -> dict[str, Any]:
    flow_id = arguments["flowId"]
    check_flow_id(flow_id)
    store = FlowStore()
    head = store.retire(flow_id)
    flow = store.get(flow_id, head.version) if head is not None else None
    if head is None or flow is None:
        raise NotFound(f"flow {flow_id!r} does not exist", code="FLOW_NOT_FOUND")
    control_logger.info("flow retired", extra={"flowId": flow_id, "version": head.version})
    return _flow(flow, store)


# Operation id -> what answers it on the task-control function (graphql-control).
CONTROL_FIELDS = _fields(
    "graphql-control",
    {
        "startTask": _start_task,
        "resumeTask": _resume_task,
        "cancelTask": _cancel_task,
        "redriveTask": _redrive_task,
        "getFlow": _get_flow,
        "listFlows": _list_flows,
        "putFlow": _put_flow,
        "retireFlow": _retire_flow,
    },
)


@control_logger.inject_lambda_context(clear_state=True)
def control_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`{"data": value}`, or `{"error": {code, message, details}}` for what the caller can fix (the
    resolver code raises it as the field's error, `errorType` = code); our own faults raise."""
    info = event.get("info") or {}
    field = (info.get("parentTypeName"), info.get("fieldName"))
    found = CONTROL_FIELDS.get(field)  # type: ignore[arg-type]
    try:
        if found is None:
            raise BadRequest(f"no resolver for {field[0]}.{field[1]}")
        operation_id, resolve = found
        caller = _authorized(operation_id, event)
        arguments = event.get("arguments") or {}
        if "taskId" in arguments:  # a mutation of another tenant's task: as if it did not exist
            tenancy.require_task(caller, arguments["taskId"])
        return {"data": resolve(arguments, caller)}
    except ApiError as exc:
        control_logger.info("request refused", extra={"field": f"{field[0]}.{field[1]}", "code": exc.code})
        return exc.body()
