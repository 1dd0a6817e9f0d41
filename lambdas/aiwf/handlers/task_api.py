"""Task API (API Gateway REST, Lambda proxy integration): flows and tasks.

Every error leaves as `{"error": {code, message, details}}` with a 4xx status for anything the
caller can fix; only our own faults are 5xx.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from pydantic import ValidationError

from ..answers import INLINE_VALUE_BYTES, PageBudget, proxy_size, public_state
from ..callbacks import heartbeat_task, resume_task
from ..control import cancel_task, redrive_task
from ..control_models import CancelTask, HeartbeatTask
from ..errors import ApiError, BadRequest, NotFound
from ..flow_documents import check_flow_id, checked_document
from ..flow_store import FlowStore
from ..limits import LimitExceeded, parse_json
from ..repository import TaskRepository
from ..requests_models import STATUSES, ResumeTask, StartTask, error_details
from ..tasks import quick_run, start_task

logger = Logger(service="task-api")
app = APIGatewayRestResolver()
MAX_LIMIT = 100
DEFAULT_LIMIT = 20


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


def _body() -> Any:
    """The request body as JSON: the one place every body-taking route parses, within the limits."""
    raw = app.current_event.body
    if raw is None or raw.strip() == "":
        raise BadRequest("request body is required", code="EMPTY_BODY")
    event = app.current_event
    data = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
    try:
        return parse_json(data)
    except LimitExceeded as exc:
        raise BadRequest(exc.message, code=exc.code) from exc


def _check_flow_id(flow_id: str) -> None:
    check_flow_id(flow_id)


def _int_param(name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    raw = app.current_event.get_query_string_value(name=name, default_value=None)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}", code="INVALID_PARAMETER") from None
    if not minimum <= value <= maximum:
        raise BadRequest(f"{name} must be between {minimum} and {maximum}", code="INVALID_PARAMETER")
    return value


# -- flows ------------------------------------------------------------------------------------
@app.put("/flows/<flowId>")
def put_flow(flowId: str) -> Response:
    _check_flow_id(flowId)
    document = checked_document(_body(), flowId)
    flow, created = FlowStore().register(document)
    logger.info("flow registered", extra={"flowId": flowId, "version": flow.version, "newVersion": created})
    return _json(201 if created else 200, {"flowId": flow.flow_id, "version": flow.version})


@app.get("/flows/<flowId>")
def get_flow(flowId: str) -> Response:
    _check_flow_id(flowId)
    version = _int_param("version", None, 1, 2**31)
    flow = FlowStore().get(flowId, version)
    if flow is None:
        which = f"version {version} of flow" if version else "flow"
        raise NotFound(f"{which} {flowId!r} does not exist", code="FLOW_NOT_FOUND")
    return _json(200, {**flow.document, "flowId": flow.flow_id, "version": flow.version, "createdAt": flow.created_at})


@app.get("/flows")
def list_flows() -> Response:
    limit = _int_param("limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT
    next_token = app.current_event.get_query_string_value(name="nextToken", default_value=None) or None
    heads, token = FlowStore().list_page(limit, next_token)
    return _json(200, {"items": [head.summary() for head in heads], "nextToken": token})


@app.delete("/flows/<flowId>")
def retire_flow(flowId: str) -> Response:
    _check_flow_id(flowId)
    head = FlowStore().retire(flowId)
    if head is None:
        raise NotFound(f"flow {flowId!r} does not exist", code="FLOW_NOT_FOUND")
    logger.info("flow retired", extra={"flowId": flowId, "version": head.version})
    return _json(200, {"flowId": head.flow_id, "version": head.version, "retired": True})


# -- tasks ------------------------------------------------------------------------------------
@app.post("/tasks")
def post_task() -> Response:
    body = _body()
    try:
        request = StartTask.model_validate(body)
    except ValidationError as exc:
        raise BadRequest("the task request is invalid", details=error_details(exc), code="INVALID_REQUEST") from exc
    if request.wait is None:
        task, created = start_task(request.flowId, request.input, request.name)
        return _json(201 if created else 200, task.state())
    item, created = quick_run(request.flowId, request.input, request.name, request.wait)
    return _json(201 if created else 200, public_state(item, inline_bytes=INLINE_VALUE_BYTES))


@app.get("/tasks/<taskId>")
def get_task(taskId: str) -> Response:
    item = TaskRepository().get_item(taskId)
    if item is None:
        raise NotFound(f"task {taskId!r} does not exist", code="TASK_NOT_FOUND")
    return _json(200, public_state(item, inline_bytes=INLINE_VALUE_BYTES))


@app.put("/tasks/<taskId>")
def put_task(taskId: str) -> Response:
    body = _body()
    try:
        request = ResumeTask.model_validate(body)
    except ValidationError as exc:
        raise BadRequest("the resume request is invalid", details=error_details(exc), code="INVALID_REQUEST") from exc
    error = request.error.model_dump() if request.error else None
    task = resume_task(taskId, request.resumeToken, request.status, request.output, error)
    return _json(202, task.state())


@app.get("/tasks")
def list_tasks() -> Response:
    status = app.current_event.get_query_string_value(name="status", default_value=None) or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}", code="INVALID_PARAMETER")
    flow_id = app.current_event.get_query_string_value(name="flowId", default_value=None) or None
    if flow_id is not None:
        _check_flow_id(flow_id)
    limit = _int_param("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    next_token = app.current_event.get_query_string_value(name="nextToken", default_value=None) or None
    items, token = TaskRepository().list_page(
        status=status,
        flow_id=flow_id,
        limit=limit or DEFAULT_LIMIT,
        next_token=next_token,
        show=public_state,
        admit=PageBudget(proxy_size).admit,
    )
    return _json(200, {"items": items, "nextToken": token})


@app.get("/tasks/<taskId>/history")
def get_history(taskId: str) -> Response:
    next_token = app.current_event.get_query_string_value(name="nextToken", default_value=None) or None
    repo = TaskRepository()
    items, token = repo.history_page(
        taskId, next_token=next_token, show=public_state, admit=PageBudget(proxy_size).admit
    )
    if not items and repo.get_item(taskId) is None:
        raise NotFound(f"task {taskId!r} does not exist", code="TASK_NOT_FOUND")
    return _json(200, {"items": items, "nextToken": token})


# -- task control: cancel, redrive, heartbeat ---------------------------------------------------
@app.post("/tasks/<taskId>/cancel")
def cancel(taskId: str) -> Response:
    raw = app.current_event.body
    body = {} if raw is None or raw.strip() == "" else _body()  # the reason is optional, and so is the body
    try:
        request = CancelTask.model_validate(body)
    except ValidationError as exc:
        raise BadRequest("the cancel request is invalid", details=error_details(exc), code="INVALID_REQUEST") from exc
    task, cancelled_now = cancel_task(taskId, request.reason)
    return _json(202 if cancelled_now else 200, task.state())


@app.post("/tasks/<taskId>/redrive")
def redrive(taskId: str) -> Response:
    return _json(202, redrive_task(taskId).state())


@app.post("/tasks/<taskId>/heartbeat")
def heartbeat(taskId: str) -> Response:
    try:
        request = HeartbeatTask.model_validate(_body())
    except ValidationError as exc:
        details = error_details(exc)
        raise BadRequest("the heartbeat request is invalid", details=details, code="INVALID_REQUEST") from exc
    return _json(200, heartbeat_task(taskId, request.resumeToken))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
