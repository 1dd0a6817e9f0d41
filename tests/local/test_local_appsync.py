"""The local AppSync emulator on its own: a small schema, its HTTP and real-time endpoints on a
loopback port, probed with raw requests and a raw WebSocket client (the wire protocol itself)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from websockets.sync.client import ClientConnection, connect

from local.appsync_realtime import decode_header
from local.appsync_server import LocalAppSync
from local.registry import AppSyncKeyRecord, DataSourceRecord, GraphqlApiRecord, Registry, ResolverRecord

SCHEMA = """
type Item @aws_api_key @aws_iam { id: ID!  group: String  note: AWSJSON  at: AWSDateTime }
type Query { item(id: ID!): Item @aws_api_key @aws_iam  secret: String @aws_iam  coded(id: ID!): Item @aws_api_key }
type Mutation { put(id: ID!, group: String, note: AWSJSON): Item @aws_iam  fail(reason: String!): Item @aws_iam }
type Subscription {
  onPut(id: ID, group: String): Item @aws_subscribe(mutations: ["put"]) @aws_api_key @aws_iam
  onPutForKeysOnly(id: ID): Item @aws_subscribe(mutations: ["put"])
}
"""
PUT_JS = """
import { util } from '@aws-appsync/utils';
export function request(ctx) { return { payload: { ...ctx.args, note: JSON.stringify(ctx.args.note ?? null) } }; }
export function response(ctx) { return ctx.result; }
"""
FAIL_JS = """
export function request(ctx) { util.error(ctx.args.reason, 'Custom', { a: 1 }, { b: 2 }); }
export function response(ctx) { return ctx.result; }
"""
# A Lambda data source with APPSYNC_JS code: the project's own task-control resolver.
CONTROL_JS = (Path(__file__).resolve().parents[2] / "schema" / "resolvers" / "taskControl.js").read_text()
API = "api1"
KEY = "da2-testkey"
EXPIRED = "da2-expired"


class Server:
    """The emulator's routes on a real socket; `events` are what the Lambda resolver received."""

    def __init__(self) -> None:
        registry = Registry()
        registry.graphql_apis[API] = GraphqlApiRecord(
            name="test", schema=SCHEMA, authentication_type="API_KEY", additional=["AWS_IAM"], uris={}
        )
        registry.appsync_keys[KEY] = AppSyncKeyRecord(API, "2999-01-01T00:00:00Z")
        registry.appsync_keys[EXPIRED] = AppSyncKeyRecord(API, "2001-01-01T00:00:00Z")
        registry.data_sources[(API, "fn")] = DataSourceRecord("AWS_LAMBDA", "arn:aws:lambda:::function:f")
        registry.data_sources[(API, "none")] = DataSourceRecord("NONE")
        registry.resolvers[(API, "Query", "item")] = ResolverRecord("fn")
        registry.resolvers[(API, "Query", "secret")] = ResolverRecord("fn")
        registry.resolvers[(API, "Query", "coded")] = ResolverRecord("fn", CONTROL_JS)
        registry.resolvers[(API, "Mutation", "put")] = ResolverRecord("none", PUT_JS)
        registry.resolvers[(API, "Mutation", "fail")] = ResolverRecord("none", FAIL_JS)
        self.events: list[dict[str, Any]] = []
        self.appsync = LocalAppSync(registry, self._invoke)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(Starlette(routes=self.appsync.routes()), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def _invoke(self, arn: str, event: str) -> tuple[bytes, str | None]:
        parsed = json.loads(event)
        self.events.append(parsed)
        if parsed["info"]["fieldName"] == "secret":
            return b'"s3cr3t"', None
        if parsed["info"]["fieldName"] == "coded" and parsed["arguments"]["id"] == "refused":
            return json.dumps(
                {"error": {"code": "WRONG_TOKEN", "message": "nope", "details": [{"p": 1}]}}
            ).encode(), None
        if parsed["info"]["fieldName"] == "coded" and parsed["arguments"]["id"] != "boom":
            return json.dumps({"data": {"id": parsed["arguments"]["id"], "group": "c"}}).encode(), None
        if parsed["arguments"].get("id") == "boom":
            return json.dumps({"errorType": "ValueError", "errorMessage": "no such item"}).encode(), "Unhandled"
        return json.dumps({"id": parsed["arguments"].get("id", "s"), "group": "g", "note": {"k": [1]}}).encode(), None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql/realtime"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.appsync.close()
        self.sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


def signed_headers(url: str, body: str, host: str | None = None) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(Credentials("testing", "testing", "testing"), "appsync", "us-east-1").add_auth(request)
    headers = dict(request.headers)
    if host:
        headers["host"] = host
    return headers


def iam_post(server: Server, query: str, variables: dict[str, Any] | None = None) -> requests.Response:
    body = json.dumps({"query": query, "variables": variables or {}})
    return requests.post(server.http, data=body, headers=signed_headers(server.http, body), timeout=10)


def key_post(server: Server, query: str, key: str = KEY, **variables: Any) -> requests.Response:
    return requests.post(
        server.http, json={"query": query, "variables": variables}, headers={"x-api-key": key}, timeout=10
    )


def b64(obj: Any, urlsafe: bool = False) -> str:
    raw = json.dumps(obj).encode()
    return (base64.urlsafe_b64encode(raw).decode().rstrip("=")) if urlsafe else base64.b64encode(raw).decode()


def open_ws(server: Server, header: dict[str, str] | None = None, subprotocol_auth: bool = False) -> ClientConnection:
    header = header if header is not None else {"host": server.host, "x-api-key": KEY}
    if subprotocol_auth:
        return connect(server.ws, subprotocols=["graphql-ws", f"header-{b64(header, urlsafe=True)}"])
    # As some clients send it: the standard base64 unescaped, so a `+` arrives as a space.
    return connect(f"{server.ws}?header={b64(header).replace('+', ' ')}&payload=e30=", subprotocols=["graphql-ws"])


def receive(ws: ClientConnection, skip_ka: bool = True) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv(timeout=5))
        if not (skip_ka and message["type"] == "ka"):
            return message


def init(ws: ClientConnection) -> dict[str, Any]:
    ws.send(json.dumps({"type": "connection_init"}))
    return receive(ws)


def start(
    ws: ClientConnection, sub_id: str, query: str, variables: dict | None = None, auth: dict | None = None
) -> None:
    data = json.dumps({"query": query, "variables": variables or {}})
    ws.send(
        json.dumps(
            {
                "id": sub_id,
                "type": "start",
                "payload": {"data": data, "extensions": {"authorization": auth or {"host": "x", "x-api-key": KEY}}},
            }
        )
    )


# -- HTTP: auth and execution ------------------------------------------------------------------------


def test_requests_without_valid_credentials_get_appsync_401s(server: Server) -> None:
    missing = requests.post(server.http, json={"query": "{ item(id: 1) { id } }"}, timeout=10)
    assert missing.status_code == 401
    assert missing.json() == {
        "errors": [{"errorType": "UnauthorizedException", "message": "Valid authorization header not provided."}]
    }
    for key in ("da2-wrong", EXPIRED):
        refused = key_post(server, "{ item(id: 1) { id } }", key=key)
        assert refused.status_code == 401 and refused.json()["errors"][0]["errorType"] == "UnauthorizedException"


def test_a_bad_sigv4_signature_is_refused(server: Server) -> None:
    body = json.dumps({"query": "mutation { put(id: 1) { id } }"})
    headers = signed_headers(server.http, body)
    tampered = requests.post(server.http, data=body.replace("1", "2"), headers=headers, timeout=10)
    assert tampered.status_code == 401
    wrong_key = dict(headers, Authorization=headers["Authorization"].replace("Credential=testing", "Credential=AKIAX"))
    assert requests.post(server.http, data=body, headers=wrong_key, timeout=10).status_code == 401
    assert requests.post(server.http, data=body, headers=headers, timeout=10).status_code == 200


def test_iam_only_fields_refuse_api_key_callers_with_appsyncs_error_shape(server: Server) -> None:
    answer = key_post(server, "mutation { put(id: 1) { id } }").json()
    assert answer == {
        "data": {"put": None},
        "errors": [
            {
                "path": ["put"],
                "data": None,
                "errorType": "Unauthorized",
                "errorInfo": None,
                "locations": [{"line": 1, "column": 12, "sourceName": None}],
                "message": "Not Authorized to access put on type Mutation",
            }
        ],
    }
    assert key_post(server, "{ secret }").json()["errors"][0]["errorType"] == "Unauthorized"
    assert iam_post(server, "{ secret }").json() == {"data": {"secret": "s3cr3t"}}


def test_a_direct_lambda_resolver_gets_the_appsync_event(server: Server) -> None:
    server.events.clear()
    query = "query Q($id: ID!) { item(id: $id) { id note ... on Item { group } } }"
    answer = key_post(server, query, id="i-1").json()
    assert answer == {"data": {"item": {"id": "i-1", "note": '{"k":[1]}', "group": "g"}}}
    [event] = server.events
    assert event["arguments"] == {"id": "i-1"}
    assert event["identity"] is None and event["source"] is None
    assert event["request"]["headers"]["x-api-key"] == KEY
    info = event["info"]
    assert (info["parentTypeName"], info["fieldName"]) == ("Query", "item")
    assert info["selectionSetList"] == ["id", "note", "group"]
    assert info["variables"] == {"id": "i-1"}
    iam_post(server, "{ item(id: 2) { id } }")
    identity = server.events[-1]["identity"]
    assert identity["accountId"] == "123456789012" and identity["userArn"].endswith("/testing")


def test_lambda_errors_and_js_util_error_become_field_errors(server: Server) -> None:
    lambda_error = key_post(server, '{ item(id: "boom") { id } }').json()
    assert lambda_error["data"] == {"item": None}
    assert lambda_error["errors"][0]["errorType"] == "Lambda:Unhandled"
    assert lambda_error["errors"][0]["message"] == "no such item"
    js_error = iam_post(server, 'mutation { fail(reason: "nope") { id } }').json()
    [error] = js_error["errors"]
    assert (error["message"], error["errorType"], error["data"], error["errorInfo"]) == (
        "nope",
        "Custom",
        {"a": 1},
        {"b": 2},
    )


def test_awsjson_is_parsed_on_input_and_json_text_on_output(server: Server) -> None:
    answer = iam_post(server, "mutation($n: AWSJSON) { put(id: 1, note: $n) { note } }", {"n": '{"x": [1, 2]}'}).json()
    assert json.loads(answer["data"]["put"]["note"]) == {"x": [1, 2]}
    bad = iam_post(server, "mutation($n: AWSJSON) { put(id: 1, note: $n) { note } }", {"n": "{not json"}).json()
    assert bad["data"] is None and bad["errors"]


def test_validation_errors_are_reported_without_execution(server: Server) -> None:
    answer = key_post(server, "{ item(id: 1) { nope } }").json()
    assert answer["data"] is None and answer["errors"][0]["errorType"] == "ValidationError"


def _refused_by_a_limit(response: requests.Response, limit: int) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["errorType"] == "BadRequestException"
    assert str(limit) in body["errors"][0]["message"]


def test_deeply_nested_variables_get_an_appsync_400_not_a_crash(server: Server) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    body = '{"query": "query($id: ID!) { item(id: $id) { id } }", "variables": {"id": "1", "x": ' + deep + "}}"
    response = requests.post(server.http, data=body, headers={"x-api-key": KEY}, timeout=10)
    _refused_by_a_limit(response, 64)


def test_a_deep_awsjson_value_is_a_graphql_error_not_a_crash(server: Server) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    answer = iam_post(server, "mutation($n: AWSJSON) { put(id: 1, note: $n) { note } }", {"n": deep})
    assert answer.status_code == 200 and answer.json()["data"] is None
    assert "64" in answer.json()["errors"][0]["message"]


def _introspection_of_depth(depth: int) -> str:
    """A valid query `depth` fields deep: __type, then `ofType` levels, then `name`."""
    return '{ __type(name: "Item") { ' + "ofType { " * (depth - 2) + "name" + " }" * (depth - 1) + " }"


def test_queries_deeper_than_appsyncs_depth_limit_are_refused(server: Server) -> None:
    assert key_post(server, _introspection_of_depth(75)).status_code == 200
    _refused_by_a_limit(key_post(server, _introspection_of_depth(76)), 75)
    _refused_by_a_limit(key_post(server, "{ item(id: 1) " + "{ id " * 10_000 + "}" * 10_000 + " }"), 75)


def test_an_oversized_request_is_refused(server: Server) -> None:
    response = key_post(server, "query($id: ID!) { item(id: $id) { id } }", id="x" * (1024 * 1024))
    _refused_by_a_limit(response, 1024 * 1024)


# -- real-time protocol ------------------------------------------------------------------------------


def test_header_query_parameter_auth_ack_and_keepalive(server: Server) -> None:
    with open_ws(server) as ws:
        assert ws.subprotocol == "graphql-ws"
        assert init(ws) == {"type": "connection_ack", "payload": {"connectionTimeoutMs": 300000}}
        assert receive(ws, skip_ka=False) == {"type": "ka"}


def test_header_subprotocol_auth_and_bad_credentials(server: Server) -> None:
    with open_ws(server, subprotocol_auth=True) as ws:
        assert init(ws)["type"] == "connection_ack"
    with open_ws(server, {"host": server.host, "x-api-key": "da2-wrong"}) as ws:
        refused = init(ws)
        assert refused["type"] == "connection_error"
        assert refused["payload"]["errors"][0]["errorType"] == "UnauthorizedException"


def test_decode_header_tolerates_spaces_and_missing_padding() -> None:
    text = base64.b64encode(json.dumps({"Host": "h", "x-api-key": "k>?"}).encode()).decode()
    assert decode_header(text.replace("+", " ").rstrip("=")) == {"host": "h", "x-api-key": "k>?"}


def test_start_data_stop_complete_with_selection_and_filters(server: Server) -> None:
    """Omitted arguments do not filter, given ones match by equality, null matches only null."""
    with open_ws(server) as ws:
        init(ws)
        start(ws, "1", 'subscription { onPut(group: "a") { id } }')
        start(ws, "2", "subscription { onPut(group: null) { id g: group } }")
        start(ws, "3", "subscription { onPut { id note } }")
        acks = [receive(ws) for _ in range(3)]
        assert sorted((a["type"], a["id"]) for a in acks) == [
            ("start_ack", "1"),
            ("start_ack", "2"),
            ("start_ack", "3"),
        ]
        iam_post(server, 'mutation { put(id: "x", group: "a", note: "{\\"n\\":1}") { id group note } }')
        iam_post(server, 'mutation { put(id: "y") { id group note } }')
        received = [receive(ws) for _ in range(4)]
        by_id: dict[str, list[Any]] = {}
        for message in received:
            assert message["type"] == "data"
            by_id.setdefault(message["id"], []).append(message["payload"])
        assert by_id["1"] == [{"data": {"onPut": {"id": "x"}}}]
        assert by_id["2"] == [{"data": {"onPut": {"id": "y", "g": None}}}]
        assert by_id["3"] == [
            {"data": {"onPut": {"id": "x", "note": '{"n":1}'}}},
            {"data": {"onPut": {"id": "y", "note": "null"}}},
        ]
        ws.send(json.dumps({"type": "stop", "id": "3"}))
        assert receive(ws) == {"type": "complete", "id": "3"}
        iam_post(server, 'mutation { put(id: "z", group: "a") { id group } }')
        assert receive(ws) == {"type": "data", "id": "1", "payload": {"data": {"onPut": {"id": "z"}}}}


def test_start_errors_carry_the_subscription_id(server: Server) -> None:
    with open_ws(server) as ws:
        init(ws)
        start(ws, "7", "subscription { onPut { nope } }")
        error = receive(ws)
        assert error["type"] == "error" and error["id"] == "7"
        assert error["payload"]["errors"][0]["errorType"] == "ValidationError"
        start(ws, "8", "subscription { onPut { id } }", auth={"host": "x", "x-api-key": "da2-wrong"})
        assert receive(ws)["payload"]["errors"][0]["errorType"] == "UnauthorizedException"
        start(ws, "9", "{ item(id: 1) { id } }")
        assert receive(ws)["payload"]["errors"][0]["errorType"] == "UnsupportedOperation"


def test_a_start_must_carry_its_own_valid_authorization(server: Server) -> None:
    """AppSync authorizes each `start` by itself: an authorized connection does not stand in for a
    start without `extensions.authorization`, and a signature made for another start is refused."""
    with open_ws(server) as ws:
        assert init(ws)["type"] == "connection_ack"
        data = json.dumps({"query": "subscription { onPut { id } }", "variables": {}})
        unauthorized = {"errorType": "UnauthorizedException", "message": "Valid authorization header not provided."}
        for sub_id, payload in (
            ("no-extensions", {"data": data}),
            ("no-authorization", {"data": data, "extensions": {}}),
            ("empty", {"data": data, "extensions": {"authorization": {}}}),
            ("not-an-object", {"data": data, "extensions": {"authorization": "da2-testkey"}}),
        ):
            ws.send(json.dumps({"id": sub_id, "type": "start", "payload": payload}))
            assert receive(ws) == {"type": "error", "id": sub_id, "payload": {"errors": [unauthorized]}}
        other = json.dumps({"query": 'subscription { onPut(id: "other") { id } }', "variables": {}})
        borrowed = signed_headers(f"https://{server.host}/graphql", other, host=server.host)
        ws.send(
            json.dumps(
                {
                    "id": "borrowed",
                    "type": "start",
                    "payload": {"data": data, "extensions": {"authorization": borrowed}},
                }
            )
        )
        refused = receive(ws)
        assert (refused["type"], refused["id"]) == ("error", "borrowed")
        assert refused["payload"]["errors"][0]["errorType"] == "UnauthorizedException"
        start(ws, "keyed", "subscription { onPut { id } }")
        assert receive(ws) == {"type": "start_ack", "id": "keyed"}
        iam_post(server, 'mutation { put(id: "refused-starts") { id } }')
        # Frames of one connection leave in order: a refused start that had subscribed anyway
        # would show up as a second `data` before the `complete`.
        assert receive(ws) == {"type": "data", "id": "keyed", "payload": {"data": {"onPut": {"id": "refused-starts"}}}}
        ws.send(json.dumps({"type": "stop", "id": "keyed"}))
        assert receive(ws) == {"type": "complete", "id": "keyed"}


def test_iam_signed_connection_and_start(server: Server) -> None:
    connect_headers = signed_headers(f"https://{server.host}/graphql/connect", "{}", host=server.host)
    with open_ws(server, connect_headers) as ws:
        assert init(ws)["type"] == "connection_ack"
        data_text = json.dumps({"query": 'subscription { onPut(id: "iam") { id } }', "variables": {}})
        auth = signed_headers(f"https://{server.host}/graphql", data_text, host=server.host)
        ws.send(
            json.dumps(
                {"id": "1", "type": "start", "payload": {"data": data_text, "extensions": {"authorization": auth}}}
            )
        )
        assert receive(ws) == {"type": "start_ack", "id": "1"}
        iam_post(server, 'mutation { put(id: "iam") { id } }')
        assert receive(ws)["payload"] == {"data": {"onPut": {"id": "iam"}}}
        # A subscription field without directives allows the default mode (API key) only.
        data_text = json.dumps({"query": "subscription { onPutForKeysOnly { id } }", "variables": {}})
        auth = signed_headers(f"https://{server.host}/graphql", data_text, host=server.host)
        ws.send(
            json.dumps(
                {"id": "2", "type": "start", "payload": {"data": data_text, "extensions": {"authorization": auth}}}
            )
        )
        refused = receive(ws)
        assert (refused["type"], refused["id"]) == ("error", "2")
        assert refused["payload"]["errors"] == [
            {"errorType": "Unauthorized", "message": "Not Authorized to access onPutForKeysOnly on type Subscription"}
        ]


def test_deep_start_payloads_get_start_errors_and_the_connection_lives_on(server: Server) -> None:
    deep_data = '{"query": "subscription { onPut { id } }", "variables": {"x": ' + "[" * 10_000 + "]" * 10_000 + "}}"
    deep_query = "subscription { onPut " + "{ id " * 10_000 + "}" * 10_000 + " }"
    with open_ws(server) as ws:
        init(ws)
        auth = {"host": "x", "x-api-key": KEY}
        ws.send(
            json.dumps(
                {"id": "1", "type": "start", "payload": {"data": deep_data, "extensions": {"authorization": auth}}}
            )
        )
        start(ws, "2", deep_query)
        errors = [receive(ws) for _ in range(2)]
        assert [(e["type"], e["id"]) for e in errors] == [("error", "1"), ("error", "2")]
        assert "75" in errors[1]["payload"]["errors"][0]["message"]
        start(ws, "3", "subscription { onPut { id } }")
        assert receive(ws) == {"type": "start_ack", "id": "3"}


def test_a_closed_connection_drops_its_subscriptions(server: Server) -> None:
    hub = server.appsync.hub
    before = hub.count()
    with open_ws(server) as ws:
        init(ws)
        start(ws, "1", "subscription { onPut { id } }")
        assert receive(ws)["type"] == "start_ack"
        assert hub.count() == before + 1
    deadline = time.monotonic() + 5
    while hub.count() != before:
        assert time.monotonic() < deadline, "the subscription outlived its connection"
        time.sleep(0.02)
    assert iam_post(server, 'mutation { put(id: "after-close") { id } }').status_code == 200


def test_a_lambda_resolver_with_js_code_maps_the_answer_and_its_error_code() -> None:
    """request -> the payload to the function -> response on `ctx.result` (or `ctx.error`): an
    `{error: {code}}` answer is a field error whose errorType is the code."""
    server = Server()
    try:
        ok = key_post(server, '{ coded(id: "c1") { id group } }').json()
        assert ok == {"data": {"coded": {"id": "c1", "group": "c"}}}
        event = server.events[-1]
        assert set(event) == {"arguments", "identity", "info"}
        assert event["info"] == {"parentTypeName": "Query", "fieldName": "coded"}
        [refused] = key_post(server, '{ coded(id: "refused") { id } }').json()["errors"]
        assert (refused["errorType"], refused["message"], refused["path"]) == ("WRONG_TOKEN", "nope", ["coded"])
        assert refused["errorInfo"] == {"details": [{"p": 1}]}
        [crashed] = key_post(server, '{ coded(id: "boom") { id } }').json()["errors"]
        assert (crashed["errorType"], crashed["message"]) == ("Lambda:Unhandled", "no such item")
    finally:
        server.stop()
