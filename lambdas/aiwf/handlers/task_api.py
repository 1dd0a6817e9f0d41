"""Task API (API Gateway REST, Lambda proxy integration): flows and tasks.

Every error leaves as `{"error": {code, message, details}}` with a 4xx status for anything the
caller can fix; only our own faults are 5xx.

Every request is authorized before its route runs: the caller (aiwf.callers, from what the
gateway's authorizer or IAM put in the event) must be a kind the catalogue allows for the
operation (403 FORBIDDEN), and a `{taskId}` in the path must be a task the caller may see
(aiwf.tenancy: 404 TASK_NOT_FOUND otherwise, as for a task nobody has).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths

from .. import operations, tenancy
from ..answers import INLINE_VALUE_BYTES, PageBudget, proxy_size, public_state
from ..callbacks import callback_heartbeat, callback_task, heartbeat_task, resume_task
from ..callers import Caller, authorize
from ..control import cancel_task, redrive_task
from ..errors import ApiError, BadRequest, NotFound
from ..flow_documents import check_flow_id, checked_document
from ..flow_store import FlowStore
from ..limits import LimitExceeded, parse_json
from ..repository import TaskRepository
from ..tasks import quick_run, start_task

logger = Logger(service="task-api")
app = APIGatewayRestResolver()


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response:
    logger.info("request refused", extra={"status": exc.status, "code": exc.code, "reason": exc.message})
    return _json(exc.status, exc.body())


@app.not_found
def _no_route(_: Exception) -> Response:
    path = app.current_event.path
    return _json(404, NotFound(f"no route for {app.current_event.http_method} {path}").body())


@dataclass
class Call:
    """One request to one catalogue operation: its path parameters, and its query parameters and
    body read and checked against the operation's entry in schema/operations.json."""

    operation: str
    path: dict[str, str]
    caller: Caller
    # The stored task of a `{taskId}` path, read when its visibility was checked.
    task_item: dict[str, Any] | None = None

    def query(self, name: str) -> Any:
        """The query parameter (converted, defaulted) or 400 INVALID_PARAMETER."""
        raw = app.current_event.get_query_string_value(name=name, default_value=None)
        return operations.query_value(self.operation, name, raw)

    def raw_query(self, name: str) -> str | None:
        """A query parameter as given (None when absent or empty), for checks the domain owns."""
        return app.current_event.get_query_string_value(name=name, default_value=None) or None

    def json(self) -> Any:
        """The request body as JSON: the one place every body-taking route parses, within the limits."""
        return self._parsed

    @cached_property
    def _parsed(self) -> Any:
        raw = app.current_event.body
        if raw is None or raw.strip() == "":
            if operations.OPERATIONS[self.operation].body_required:
                raise BadRequest("request body is required", code="EMPTY_BODY")
            return {}  # an optional body may be omitted
        event = app.current_event
        data = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
        try:
            return parse_json(data)
        except LimitExceeded as exc:
            raise BadRequest(exc.message, code=exc.code) from exc

    def body(self) -> dict[str, Any]:
        """The body checked against the operation's request schema (400 INVALID_REQUEST listing every problem)."""
        return operations.checked_body(self.operation, self.json())


# -- flows ------------------------------------------------------------------------------------
def put_flow(call: Call) -> Response:
    flow_id = call.path["flowId"]
    check_flow_id(flow_id)
    # A flow document is checked against the flow schema (INVALID_FLOW with every problem), not
    # the catalogue's summary of it.
    document = checked_document(call.json(), flow_id)
    flow, created = FlowStore().register(document)
    logger.info("flow registered", extra={"flowId": flow_id, "version": flow.version, "newVersion": created})
    return _json(201 if created else 200, {"flowId": flow.flow_id, "version": flow.version})


def get_flow(call: Call) -> Response:
    flow_id = call.path["flowId"]
    check_flow_id(flow_id)
    version = call.query("version")
    flow = FlowStore().get(flow_id, version)
    if flow is None:
        which = f"version {version} of flow" if version else "flow"
        raise NotFound(f"{which} {flow_id!r} does not exist", code="FLOW_NOT_FOUND")
    return _json(200, {**flow.document, "flowId": flow.flow_id, "version": flow.version, "createdAt": flow.created_at})


def list_flows(call: Call) -> Response:
    heads, token = FlowStore().list_page(call.query("limit"), call.query("nextToken"))
    return _json(200, {"items": [head.summary() for head in heads], "nextToken": token})


def retire_flow(call: Call) -> Response:
    flow_id = call.path["flowId"]
    check_flow_id(flow_id)
    head = FlowStore().retire(flow_id)
    if head is None:
        raise NotFound(f"flow {flow_id!r} does not exist", code="FLOW_NOT_FOUND")
    logger.info("flow retired", extra={"flowId": flow_id, "version": head.version})
    return _json(200, {"flowId": head.flow_id, "version": head.version, "retired": True})


# -- tasks ------------------------------------------------------------------------------------
def post_task(call: Call) -> Response:
    request = call.body()
    flow_id, task_input, name = request["flowId"], request.get("input", {}), request.get("name")
    tenant_id = tenancy.start_tenant(call.caller)
    if request.get("wait") is None:
        task, created = start_task(flow_id, task_input, name, tenant_id=tenant_id)
        return _json(201 if created else 200, task.state())
    item, created = quick_run(flow_id, task_input, name, request["wait"], tenant_id=tenant_id)
    return _json(201 if created else 200, public_state(item, inline_bytes=INLINE_VALUE_BYTES))


def get_task(call: Call) -> Response:
    item = call.task_item or tenancy.require_task(call.caller, call.path["taskId"])
    return _json(200, public_state(item, inline_bytes=INLINE_VALUE_BYTES))


def put_task(call: Call) -> Response:
    request = call.body()
    task = resume_task(
        call.path["taskId"],
        request["resumeToken"],
        request["status"],
        request.get("output"),
        operations.resume_error(request),
    )
    return _json(202, task.state())


def list_tasks(call: Call) -> Response:
    flow_id = call.raw_query("flowId")  # a bad one is INVALID_FLOW_ID, as everywhere
    if flow_id is not None:
        check_flow_id(flow_id)
    items, token = TaskRepository().list_page(
        status=call.query("status"),
        flow_id=flow_id,
        limit=call.query("limit"),
        next_token=call.query("nextToken"),
        show=public_state,
        admit=PageBudget(proxy_size).admit,
        tenant_id=tenancy.list_tenant(call.caller),
    )
    return _json(200, {"items": items, "nextToken": token})


def get_history(call: Call) -> Response:
    items, token = TaskRepository().history_page(
        call.path["taskId"], next_token=call.query("nextToken"), show=public_state, admit=PageBudget(proxy_size).admit
    )
    return _json(200, {"items": items, "nextToken": token})


# -- task control: cancel, redrive, heartbeat ---------------------------------------------------
def cancel(call: Call) -> Response:
    task, cancelled_now = cancel_task(call.path["taskId"], call.body().get("reason"))
    return _json(202 if cancelled_now else 200, task.state())


def redrive(call: Call) -> Response:
    return _json(202, redrive_task(call.path["taskId"]).state())


def heartbeat(call: Call) -> Response:
    return _json(200, heartbeat_task(call.path["taskId"], call.body()["resumeToken"]))


# -- callbacks by capability: the resume token in the body is the only credential ---------------
def callback(call: Call) -> Response:
    request = call.body()
    task = callback_task(
        call.path["waitId"],
        request["resumeToken"],
        request["status"],
        request.get("output"),
        operations.resume_error(request),
    )
    return _json(202, task.state())


def callback_beat(call: Call) -> Response:
    return _json(200, callback_heartbeat(call.path["waitId"], call.body()["resumeToken"]))


# Operation id (schema/operations.json) -> what answers it; the method and path come from there.
ROUTES: dict[str, Callable[[Call], Response]] = {
    "listFlows": list_flows,
    "putFlow": put_flow,
    "getFlow": get_flow,
    "retireFlow": retire_flow,
    "startTask": post_task,
    "listTasks": list_tasks,
    "getTask": get_task,
    "resumeTask": put_task,
    "getTaskHistory": get_history,
    "cancelTask": cancel,
    "redriveTask": redrive,
    "heartbeatTask": heartbeat,
    "callbackTask": callback,
    "callbackHeartbeat": callback_beat,
}


def _admitted(operation: operations.Operation, path: dict[str, str]) -> Call:
    """The request as a Call its route may answer, checked in this order: the caller's kind (403
    FORBIDDEN), the body's limits (400, before any read of the store), a task route's body (400
    whichever task it names, as before tenants), then the task's tenant (404 TASK_NOT_FOUND)."""
    caller = authorize(operation.id, "rest", Caller.from_rest(app.current_event.raw_event))
    call = Call(operation.id, path, caller)
    if operation.rest and operation.rest.get("requestBody"):
        call.json()
    if "taskId" in path:
        if operation.body_schema is not None:
            call.body()
        call.task_item = tenancy.require_task(caller, path["taskId"])
    return call


def _register(operation: operations.Operation) -> None:
    """A powertools route for the operation's method and path (`{name}` becomes `<name>`)."""
    answer = ROUTES[operation.id]
    rule = re.sub(r"\{([^}]+)\}", r"<\1>", operation.rest["path"])  # type: ignore[index]

    def route(**path: str) -> Response:
        return answer(_admitted(operation, path))

    app.route(rule, operation.rest["method"].upper())(route)  # type: ignore[index]


for _operation in operations.rest_operations():
    _register(_operation)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
