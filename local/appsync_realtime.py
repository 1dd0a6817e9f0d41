"""AppSync's real-time WebSocket protocol on the local stack, so unmodified AppSync clients subscribe.

The protocol as AppSync speaks it (subprotocol ``graphql-ws``):
- auth for the connection comes from the ``header`` query parameter (standard base64 of a JSON
  object of headers; a ``+`` may arrive as a space) or a ``header-<base64url>`` subprotocol;
- ``connection_init`` -> ``connection_ack`` with ``connectionTimeoutMs``, then ``ka`` periodically;
- ``start`` (``payload.data`` is a JSON *string*, auth in ``payload.extensions.authorization``) ->
  ``start_ack``, or ``error`` with the subscription ``id`` (a ``start`` without its own
  authorization is refused with ``UnauthorizedException``, whatever authorized the connection);
- ``data`` with ``payload: {data: {<field>: ...}}`` for each matching mutation;
- ``stop`` -> ``complete`` (always: clients wait for it before closing).

A subscription receives the mutation's result restricted to its own selection set, when every
argument it gave equals the result's field of that name: an omitted argument does not filter,
an argument given as null matches only null. A subscription field with a resolver runs it at
`start` (its `identity` is the caller's): a filter the resolver sets with
`extensions.setSubscriptionFilter` (enhanced filtering) then decides alone, as in AppSync, where
a resolver's filter replaces the argument filtering; `util.unauthorized()` refuses the start.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import threading
import types
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    get_named_type,
    parse,
    print_ast,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from starlette.websockets import WebSocket, WebSocketDisconnect

from local import graphql_document
from local.appsync import MAX_QUERY_DEPTH, GraphqlApi, nesting_exceeds
from local.appsync_auth import AWS_IAM, Identity, Unauthorized, lower
from local.graphql_document import project, query_depth, response_name, selected_fields
from local.js_resolver import ResolverError

log = logging.getLogger("local.appsync.realtime")

SUBPROTOCOL = "graphql-ws"
CONNECTION_TIMEOUT_MS = 300_000
KEEPALIVE_SECONDS = 60.0


def decode_header(text: str, urlsafe: bool = False) -> dict[str, str]:
    """The base64 JSON header object; tolerates `+` turned into a space and missing padding."""
    text = text.strip().replace(" ", "+")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.urlsafe_b64decode(text) if urlsafe else base64.b64decode(text)
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized("Malformed authorization header.") from exc
    if not isinstance(value, dict):
        raise Unauthorized("Malformed authorization header.")
    return lower(value)


@dataclass
class Subscription:
    connection: Connection
    id: str
    field: str
    response_name: str
    filters: dict[str, Any]
    selection: FieldNode
    fragments: dict[str, FragmentDefinitionNode]
    shape: str = ""  # the selection as text: subscriptions of one shape share one rendered payload
    # The filter the field's resolver set (`{filterGroup: [{filters: [...]}]}`): when present it
    # decides instead of `filters`, as AppSync's enhanced filtering does.
    enhanced: dict[str, Any] | None = None

    def wants(self, value: dict[str, Any]) -> bool:
        return enhanced_matches(self.enhanced, value) if self.enhanced is not None else matches(self.filters, value)


@dataclass
class Connection:
    """One client socket: its outgoing queue (fed from any thread) and its subscriptions."""

    asgi_send: Any  # the server's own ASGI `send`: every frame goes straight to it
    loop: asyncio.AbstractEventLoop
    identity: Identity | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    sending: bool = False  # the writer holds a message it has not finished sending
    unfinished: asyncio.Future[None] | None = None  # a fan-out frame whose send had to wait

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message from any thread; the connection's writer sends in order."""
        self.send_text(json.dumps(message, separators=(",", ":")))

    def send_text(self, text: str | None) -> None:
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, text)


def matches(filters: dict[str, Any], value: dict[str, Any]) -> bool:
    return all(value.get(name) == wanted for name, wanted in filters.items())


def _between(actual: Any, bounds: Any) -> bool:
    return isinstance(bounds, list) and len(bounds) == 2 and actual is not None and bounds[0] <= actual <= bounds[1]


def _contains(actual: Any, wanted: Any) -> bool:
    return isinstance(actual, str | list) and wanted in actual


# AppSync's enhanced filter operators (the ones over scalar fields), as predicates of (field value, filter value).
FILTER_OPERATORS: dict[str, Any] = {
    "eq": lambda actual, wanted: actual == wanted,
    "ne": lambda actual, wanted: actual != wanted,
    "in": lambda actual, wanted: isinstance(wanted, list) and actual in wanted,
    "notIn": lambda actual, wanted: isinstance(wanted, list) and actual not in wanted,
    "beginsWith": lambda actual, wanted: isinstance(actual, str) and actual.startswith(str(wanted)),
    "contains": _contains,
    "notContains": lambda actual, wanted: not _contains(actual, wanted),
    "containsAny": lambda actual, wanted: isinstance(wanted, list) and any(_contains(actual, w) for w in wanted),
    "gt": lambda actual, wanted: actual is not None and actual > wanted,
    "ge": lambda actual, wanted: actual is not None and actual >= wanted,
    "lt": lambda actual, wanted: actual is not None and actual < wanted,
    "le": lambda actual, wanted: actual is not None and actual <= wanted,
    "between": _between,
}


def enhanced_matches(filter_: dict[str, Any], value: dict[str, Any]) -> bool:
    """AppSync's enhanced filter: any group whose filters all hold (OR of groups, AND within one)."""
    for group in filter_.get("filterGroup") or ():
        try:
            if all(
                FILTER_OPERATORS[f["operator"]](value.get(f["fieldName"]), f.get("value")) for f in group["filters"]
            ):
                return True
        except TypeError:  # a comparison of mismatched types does not hold
            continue
    return False


def checked_filter(filter_: dict[str, Any]) -> dict[str, Any]:
    """A resolver's filter if AppSync would take it (groups of filters with known operators), else
    the start's error."""
    groups = filter_.get("filterGroup")
    if not isinstance(groups, list) or not groups:
        raise _StartError("BadRequestException", "The subscription filter has no filterGroup")
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or not filters:
            raise _StartError("BadRequestException", "A subscription filter group has no filters")
        for item in filters:
            if not isinstance(item, dict) or item.get("operator") not in FILTER_OPERATORS or "fieldName" not in item:
                raise _StartError("BadRequestException", f"Unsupported subscription filter: {item!r}")
    return filter_


class RealtimeHub:
    """Subscriptions of one API; it registers `publish` with the API, which calls it after each subscribed mutation."""

    def __init__(self, api: GraphqlApi, keepalive_seconds: float = KEEPALIVE_SECONDS) -> None:
        self.api = api
        self.keepalive_seconds = keepalive_seconds
        self._by_field: dict[str, dict[tuple[int, str], Subscription]] = {}
        self._lock = threading.Lock()
        api.on_publish(self.publish)

    # -- fan-out (any thread) -----------------------------------------------------------------------

    def publish(self, mutation_field: str, value: dict[str, Any], _response_name: str) -> None:
        for subscription_field in self.api.subscriptions.get(mutation_field, ()):
            with self._lock:
                targets = list(self._by_field.get(subscription_field, {}).values())
            type_name = self._result_type(subscription_field)
            rendered: dict[str, str] = {}  # one JSON payload per selection shape, whatever the fan-out
            outgoing: dict[asyncio.AbstractEventLoop, list[tuple[Connection, str]]] = {}
            for sub in targets:
                if not sub.wants(value):
                    continue
                payload = rendered.get(sub.shape)
                if payload is None:
                    data = {sub.response_name: project(value, sub.selection, sub.fragments, type_name)}
                    payload = rendered[sub.shape] = json.dumps({"data": data}, separators=(",", ":"))
                text = f'{{"type":"data","id":{json.dumps(sub.id)},"payload":{payload}}}'
                outgoing.setdefault(sub.connection.loop, []).append((sub.connection, text))
            for loop, messages in outgoing.items():
                if loop is _running_loop():  # published from the loop itself: the frames leave now
                    _enqueue_all(messages)
                else:  # one wake-up of the server's loop per fan-out
                    loop.call_soon_threadsafe(_enqueue_all, messages)

    def _result_type(self, subscription_field: str) -> str:
        subscription = self.api.schema.subscription_type
        assert subscription is not None
        return get_named_type(subscription.fields[subscription_field].type).name

    def count(self) -> int:
        with self._lock:
            return sum(len(subs) for subs in self._by_field.values())

    # -- the socket -----------------------------------------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The route, as a plain ASGI app (so Starlette hands it the server's own `send`): outgoing
        frames skip Starlette's WebSocket and exception wrappers, a fifth of each frame's CPU, which
        is most of what a fan-out to many subscribers costs the server (bench/fanout_floor.py).
        Starlette's WebSocket still does the handshake, the reading and the close."""
        websocket = WebSocket(scope, receive, send)
        offered = list(websocket.scope.get("subprotocols") or [])
        if SUBPROTOCOL not in offered:
            await websocket.close(code=1002, reason="graphql-ws subprotocol required")
            return
        connection = Connection(send, asyncio.get_running_loop())
        failure: Unauthorized | None = None
        try:
            connection.identity = self._connect_identity(websocket, offered)
        except Unauthorized as exc:
            failure = exc
        await websocket.accept(subprotocol=SUBPROTOCOL)
        writer = asyncio.create_task(self._writer(connection))
        keepalive: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    text = await websocket.receive_text()
                except (WebSocketDisconnect, RuntimeError):
                    break
                try:
                    message = json.loads(text)
                except (ValueError, RecursionError):
                    connection.send(_error(None, "UnsupportedOperation", "Message is not valid JSON"))
                    continue
                kind = message.get("type") if isinstance(message, dict) else None
                if kind == "connection_init":
                    if failure is not None:
                        error = {"errorType": "UnauthorizedException", "message": failure.message, "errorCode": 401}
                        connection.send({"type": "connection_error", "payload": {"errors": [error]}})
                        break
                    ack = {"connectionTimeoutMs": CONNECTION_TIMEOUT_MS}
                    connection.send({"type": "connection_ack", "payload": ack})
                    if keepalive is None:
                        keepalive = asyncio.create_task(self._keepalive(connection))
                elif connection.identity is None or failure is not None:
                    connection.send(_error(message.get("id"), "UnauthorizedException", "Connection is not authorized"))
                elif kind == "start":
                    self._start(connection, message)
                elif kind == "stop":
                    self._stop(connection, str(message.get("id")))
                    connection.send({"type": "complete", "id": message.get("id")})
                elif kind == "ka":
                    continue
                else:
                    unsupported = f"Operation {kind!r} is not supported"
                    connection.send(_error(message.get("id"), "UnsupportedOperation", unsupported))
        finally:
            for sub_id in list(connection.subscriptions):
                self._stop(connection, sub_id)
            if keepalive is not None:
                keepalive.cancel()
            connection.send_text(None)  # queued after anything still pending, so the writer sends it all
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=2)
            with contextlib.suppress(Exception):
                await websocket.close()

    async def _writer(self, connection: Connection) -> None:
        while True:
            text = await connection.outbox.get()
            connection.sending = True
            try:
                if connection.unfinished is not None:
                    await connection.unfinished  # a fan-out frame sent before this message
                if text is None:
                    return
                await connection.asgi_send({"type": "websocket.send", "text": text})
            except Exception:  # the client went away; the reader ends the connection
                return
            finally:
                connection.sending = False

    async def _keepalive(self, connection: Connection) -> None:
        while True:
            connection.send({"type": "ka"})
            await asyncio.sleep(self.keepalive_seconds)

    def _connect_identity(self, websocket: WebSocket, offered: list[str]) -> Identity:
        header: dict[str, str] | None = None
        for protocol in offered:
            if protocol.startswith("header-"):
                header = decode_header(protocol[len("header-") :], urlsafe=True)
        raw = websocket.query_params.get("header")
        if header is None and raw:
            header = decode_header(raw)
        if header is None:
            raise Unauthorized("Valid authorization header not provided.")
        payload = websocket.query_params.get("payload") or "e30="
        try:
            body = base64.b64decode(payload.replace(" ", "+") + "=" * (-len(payload) % 4))
        except binascii.Error:
            body = b"{}"
        return self.api.authorizer.identify(header, "POST", "/graphql/connect", body)

    # -- start / stop -----------------------------------------------------------------------------------

    def _start(self, connection: Connection, message: dict[str, Any]) -> None:
        sub_id = str(message.get("id"))
        payload = message.get("payload") or {}
        data = payload.get("data")
        try:
            if not isinstance(data, str):
                raise _StartError("BadRequestException", "payload.data must be a JSON string")
            identity = self._start_identity(payload, data)
            request = json.loads(data)
            subscription = self._subscription(connection, sub_id, request, identity)
        except _StartError as exc:
            connection.send(_error(sub_id, exc.error_type, exc.message))
            return
        except (ValueError, RecursionError):
            connection.send(_error(sub_id, "BadRequestException", "payload.data is not valid JSON"))
            return
        if sub_id in connection.subscriptions:
            connection.send(_error(sub_id, "DuplicatedOperationError", f"Operation with id {sub_id} already exists"))
            return
        with self._lock:
            connection.subscriptions[sub_id] = subscription
            self._by_field.setdefault(subscription.field, {})[(id(connection), sub_id)] = subscription
        connection.send({"type": "start_ack", "id": sub_id})

    def _start_identity(self, payload: dict[str, Any], data: str) -> Identity:
        """Who starts this subscription: AppSync authorizes every `start` on its own, from
        `payload.extensions.authorization` (an API key, or a SigV4 signature of this very `data`
        for `/graphql`); the connection's authorization does not stand in for it, so a start
        without one is refused, and a signature made for another start does not verify."""
        extensions = payload.get("extensions")
        authorization = extensions.get("authorization") if isinstance(extensions, dict) else None
        if not isinstance(authorization, dict) or not authorization:
            raise _StartError("UnauthorizedException", "Valid authorization header not provided.")
        try:
            return self.api.authorizer.identify(lower(authorization), "POST", "/graphql", data.encode())
        except Unauthorized as exc:
            raise _StartError("UnauthorizedException", exc.message) from exc

    def _stop(self, connection: Connection, sub_id: str) -> None:
        with self._lock:
            subscription = connection.subscriptions.pop(sub_id, None)
            if subscription is not None:
                self._by_field.get(subscription.field, {}).pop((id(connection), sub_id), None)

    def _subscription(
        self, connection: Connection, sub_id: str, request: dict[str, Any], identity: Identity
    ) -> Subscription:
        schema = self.api.schema
        too_deep = _StartError("BadRequestException", f"Query depth exceeds the limit of {self.api.max_query_depth}")
        query = request.get("query") or ""
        if nesting_exceeds(query, 2 * MAX_QUERY_DEPTH):  # the parser recurses per level
            raise too_deep
        try:
            document = parse(query)
        except GraphQLError as exc:
            raise _StartError("InvalidSyntaxError", exc.message) from exc
        errors = validate(schema, document)
        if errors:
            raise _StartError("ValidationError", errors[0].message)
        if query_depth(document) > self.api.max_query_depth:
            raise too_deep
        operation = graphql_document.operation(document, request.get("operationName"))
        if operation is None or operation.operation.value != "subscription":
            raise _StartError("UnsupportedOperation", "Only subscriptions are supported on the real-time endpoint")
        fields = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
        if len(fields) != 1:
            raise _StartError("UnsupportedOperation", "A subscription selects exactly one field")
        node = fields[0]
        subscription_type = schema.subscription_type
        assert subscription_type is not None
        field_def = subscription_type.fields[node.name.value]
        if node.name.value not in {f for names in self.api.subscriptions.values() for f in names}:
            raise _StartError("UnsupportedOperation", f"{node.name.value} has no @aws_subscribe")
        fragments = graphql_document.fragments(document)
        denied = self._denied(subscription_type, node, fragments, identity.mode)
        if (
            not denied
            and identity.mode == AWS_IAM
            and not self.api.iam_allows(identity, subscription_type.name, node.name.value)
        ):
            denied = (subscription_type.name, node.name.value)
        if denied:
            raise _StartError("Unauthorized", f"Not Authorized to access {denied[1]} on type {denied[0]}")
        coerced = get_variable_values(schema, operation.variable_definitions or (), request.get("variables") or {})
        if isinstance(coerced, list):
            raise _StartError("ValidationError", coerced[0].message)
        try:
            filters = get_argument_values(field_def, node, coerced)
        except GraphQLError as exc:
            raise _StartError("ValidationError", exc.message) from exc
        enhanced = self._resolver_filter(subscription_type.name, node.name.value, filters, identity)
        return Subscription(
            connection=connection,
            id=sub_id,
            field=node.name.value,
            response_name=response_name(node),
            filters=filters,
            selection=node,
            fragments=fragments,
            shape=print_ast(node) + "".join(print_ast(f) for f in fragments.values()),
            enhanced=enhanced,
        )

    def _resolver_filter(
        self, type_name: str, field_name: str, arguments: dict[str, Any], identity: Identity
    ) -> dict[str, Any] | None:
        """Run the subscription field's resolver, if it has one, as AppSync does at subscribe time:
        the filter it set (None: the arguments filter), or the start's error when it refused."""
        code = self.api.field_code(type_name, field_name)
        if code is None:
            return None
        ctx = {
            "arguments": arguments,
            "args": arguments,
            "identity": identity.detail,
            "source": None,
            "request": {"headers": {}, "domainName": None},
            "info": {"fieldName": field_name, "parentTypeName": type_name, "variables": {}},
            "prev": None,
            "stash": {},
        }
        try:
            found = code.subscription_filter(ctx)
        except ResolverError as exc:
            raise _StartError(exc.error_type or "Unauthorized", exc.message or "Unauthorized") from exc
        return checked_filter(found) if found is not None else None

    def _denied(
        self, parent: GraphQLObjectType, node: FieldNode, fragments: dict[str, FragmentDefinitionNode], mode: str
    ) -> tuple[str, str] | None:
        """The first selected (type, field) the caller's mode may not read, walking the selection set."""
        name = node.name.value
        if not self.api.field_allowed(parent.name, name, mode):
            return parent.name, name
        if node.selection_set is None or name.startswith("__"):
            return None
        child = get_named_type(parent.fields[name].type)
        if not isinstance(child, GraphQLObjectType):
            return None
        for selection in selected_fields(node.selection_set, fragments):
            denied = self._denied(child, selection, fragments, mode)
            if denied:
                return denied
        return None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _enqueue_all(messages: list[tuple[Connection, str]]) -> None:
    """Send a fan-out's frames from this one callback of the server loop.

    A connection whose writer has nothing pending gets its frame at once (the ASGI send completes
    without suspending unless the socket's buffer is full): no wake-up of its writer task per
    subscriber. A send that has to wait finishes in a task the writer waits for, so a connection's
    messages still leave in order and a slow client holds up no one else."""
    for connection, text in messages:
        pending = connection.unfinished
        if connection.sending or not connection.outbox.empty() or (pending is not None and not pending.done()):
            connection.outbox.put_nowait(text)
            continue
        connection.unfinished = None
        send = connection.asgi_send({"type": "websocket.send", "text": text})
        try:
            waiting_on = send.send(None)
        except StopIteration:
            continue
        except Exception:  # the client went away; the reader ends the connection
            continue
        connection.unfinished = asyncio.ensure_future(_finish_send(send, waiting_on))


async def _finish_send(send: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    with contextlib.suppress(Exception):
        await _resume(send, waiting_on)


@types.coroutine
def _resume(send: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """Drive a coroutine that was started by hand and suspended on `waiting_on` to its end."""
    while True:
        try:
            value = yield waiting_on
        except BaseException as exc:  # cancellation: hand it to the coroutine
            try:
                waiting_on = send.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_on = send.send(value)
        except StopIteration:
            return


class _StartError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _error(sub_id: Any, error_type: str, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "error", "payload": {"errors": [{"errorType": error_type, "message": message}]}}
    if sub_id is not None:
        error["id"] = sub_id
    return error
