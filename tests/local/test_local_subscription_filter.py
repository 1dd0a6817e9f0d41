"""The subscription's tenant filter on the local AppSync: the project's own schema and resolver code
(schema/resolvers/workflowStateUpdated.js) on the emulator, probed over the wire protocol.

The resolver sets an enhanced filter from the caller's identity; AppSync then applies that filter
alone (no longer the arguments), so it carries the arguments too: taskId / flowId / status keep
filtering, and no argument can widen the tenant."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.sync.client import ClientConnection

from local.appsync_auth import Identity
from local.appsync_realtime import _StartError, enhanced_matches
from local.appsync_server import LocalAppSync
from local.registry import AppSyncKeyRecord, DataSourceRecord, GraphqlApiRecord, Registry, ResolverRecord
from tests.infra.stackmodel import REPO_ROOT
from tests.local.test_local_appsync import KEY, init, open_ws, receive, signed_headers, start

SCHEMA = (REPO_ROOT / "schema" / "schema.graphql").read_text()
RESOLVERS = REPO_ROOT / "schema" / "resolvers"
API = "state"
SUBSCRIBE = "subscription($taskId: ID, $status: WorkflowStatus) { workflowStateUpdated(taskId: $taskId, status: $status) { taskId tenantId status } }"  # noqa: E501
PUBLISH = (
    "mutation($input: WorkflowStateInput!) { updateWorkflowState(input: $input) { taskId tenantId status seq flowId } }"
)


class Server:
    """The emulator with the project's schema and its two NONE resolvers, on a loopback socket."""

    def __init__(self) -> None:
        registry = Registry()
        registry.graphql_apis[API] = GraphqlApiRecord(
            name="state", schema=SCHEMA, authentication_type="API_KEY", additional=["AWS_IAM"], uris={}
        )
        registry.appsync_keys[KEY] = AppSyncKeyRecord(API, "2999-01-01T00:00:00Z")
        registry.data_sources[(API, "none")] = DataSourceRecord("NONE")
        for type_name, field, file in (
            ("Mutation", "updateWorkflowState", "updateWorkflowState.js"),
            ("Subscription", "workflowStateUpdated", "workflowStateUpdated.js"),
        ):
            registry.resolvers[(API, type_name, field)] = ResolverRecord("none", (RESOLVERS / file).read_text())
        self.appsync = LocalAppSync(registry, lambda arn, event: (b"null", None))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(Starlette(routes=self.appsync.routes()), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

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


def publish(server: Server, task_id: str, tenant: str, status: str = "RUNNING") -> None:
    import requests

    state = {"taskId": task_id, "flowId": "f", "status": status, "seq": 1, "tenantId": tenant}
    body = json.dumps({"query": PUBLISH, "variables": {"input": state}})
    answer = requests.post(server.http, data=body, headers=signed_headers(server.http, body), timeout=10)
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text


def iam_start(server: Server, ws: ClientConnection, sub_id: str, variables: dict[str, Any]) -> None:
    data = json.dumps({"query": SUBSCRIBE, "variables": variables})
    auth = signed_headers(f"https://{server.host}/graphql", data, host=server.host)
    ws.send(
        json.dumps({"id": sub_id, "type": "start", "payload": {"data": data, "extensions": {"authorization": auth}}})
    )


def drain(ws: ClientConnection, seconds: float = 0.3) -> list[dict[str, Any]]:
    """Every data message that arrives within `seconds` of quiet."""
    found = []
    while True:
        try:
            message = json.loads(ws.recv(timeout=seconds))
        except TimeoutError:
            return found
        if message["type"] == "data":
            found.append(message)


def test_an_api_key_subscriber_gets_tenant_default_only_and_an_operator_every_tenant(server: Server) -> None:
    connect = signed_headers(f"https://{server.host}/graphql/connect", "{}", host=server.host)
    with open_ws(server) as keyed, open_ws(server, connect) as operator:
        init(keyed), init(operator)
        start(keyed, "all", SUBSCRIBE)
        start(keyed, "by-task", SUBSCRIBE, {"taskId": "t-b"})  # another tenant's task by id: still nothing
        start(keyed, "by-status", SUBSCRIBE, {"status": "SUCCEEDED"})
        iam_start(server, operator, "all", {})
        iam_start(server, operator, "by-status", {"status": "SUCCEEDED"})
        assert sorted(receive(keyed)["id"] for _ in range(3)) == ["all", "by-status", "by-task"]
        assert sorted(receive(operator)["id"] for _ in range(2)) == ["all", "by-status"]
        publish(server, "t-a", "default")
        publish(server, "t-b", "tenant-b")  # an operator's start in tenant B
        publish(server, "t-a", "default", "SUCCEEDED")
        publish(server, "t-b", "tenant-b", "SUCCEEDED")
        seen_by_key = [(m["id"], m["payload"]["data"]["workflowStateUpdated"]) for m in drain(keyed)]
        assert {state["tenantId"] for _, state in seen_by_key} == {"default"}
        assert sorted((sub, state["taskId"], state["status"]) for sub, state in seen_by_key) == [
            ("all", "t-a", "RUNNING"),
            ("all", "t-a", "SUCCEEDED"),
            ("by-status", "t-a", "SUCCEEDED"),
        ]
        seen_by_operator = [(m["id"], m["payload"]["data"]["workflowStateUpdated"]) for m in drain(operator)]
        assert sorted((sub, state["taskId"], state["status"]) for sub, state in seen_by_operator) == [
            ("all", "t-a", "RUNNING"),
            ("all", "t-a", "SUCCEEDED"),
            ("all", "t-b", "RUNNING"),
            ("all", "t-b", "SUCCEEDED"),
            ("by-status", "t-a", "SUCCEEDED"),
            ("by-status", "t-b", "SUCCEEDED"),
        ]


def test_a_user_gets_its_claims_tenant_and_a_user_without_one_is_refused(server: Server) -> None:
    """Cognito identities as AppSync hands them to resolvers (the local pool's tokens come with
    the edge work; the hub runs the resolver with whatever identity the connection proved)."""
    hub = server.appsync.hub
    user = Identity("AMAZON_COGNITO_USER_POOLS", {"sub": "s", "username": "ann", "claims": {"custom:tenant": "b"}})
    found = hub._resolver_filter("Subscription", "workflowStateUpdated", {"taskId": "t"}, user)
    assert found is not None
    assert enhanced_matches(found, {"taskId": "t", "tenantId": "b"})
    assert not enhanced_matches(found, {"taskId": "t", "tenantId": "default"})
    assert not enhanced_matches(found, {"taskId": "u", "tenantId": "b"})
    no_tenant = Identity("AMAZON_COGNITO_USER_POOLS", {"sub": "s", "username": "x", "claims": {}})
    with pytest.raises(_StartError, match="Unauthorized"):
        hub._resolver_filter("Subscription", "workflowStateUpdated", {}, no_tenant)


def test_enhanced_filters_or_their_groups_and_and_their_filters() -> None:
    groups = {
        "filterGroup": [
            {
                "filters": [
                    {"fieldName": "a", "operator": "eq", "value": 1},
                    {"fieldName": "b", "operator": "ne", "value": 2},
                ]
            },
            {"filters": [{"fieldName": "c", "operator": "in", "value": ["x", "y"]}]},
        ]
    }
    assert enhanced_matches(groups, {"a": 1, "b": 3})
    assert not enhanced_matches(groups, {"a": 1, "b": 2})
    assert enhanced_matches(groups, {"c": "y"})
    assert not enhanced_matches(groups, {"c": "z", "a": 2})
