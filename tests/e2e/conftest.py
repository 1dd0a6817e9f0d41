"""End-to-end: the real program on the local stack, driven by real clients (requests, gql).

The stack is the session's one (tests/conftest.py), shared with the integration tests; these tests
use flow ids and task names of their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
import yaml
from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.appsync_auth import AppSyncApiKeyAuthentication, AppSyncIAMAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport

from aiwf.tasks import task_id_for
from local.stack import LocalStack
from tests.sigv4 import SigV4, operator_request

REPO_ROOT = Path(__file__).resolve().parents[2]
FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
STATE_FIELDS = """
  taskId flowId flowVersion status seq currentStep branchId waitingFor output
  error { errorName errorMessage errorDetails retryable stepId branchId }
  startedAt updatedAt
"""
SUBSCRIPTION = gql(
    "subscription Watch($taskId: ID, $flowId: String) {"
    f"  workflowStateUpdated(taskId: $taskId, flowId: $flowId) {{ {STATE_FIELDS} }}"
    "}"
)
HISTORY = gql(
    "query History($taskId: ID!, $afterSeq: Int) {"
    f"  getWorkflowHistory(taskId: $taskId, afterSeq: $afterSeq) {{ {STATE_FIELDS} }}"
    "}"
)


@dataclass
class Deployed:
    """The stack outputs a client gets, and helpers that use only them (plus the hub, to know a
    subscription is registered before the test makes the change it waits for)."""

    stack: LocalStack
    outputs: dict[str, Any]

    @property
    def host(self) -> str:
        return urlparse(self.outputs["graphqlUrl"]).netloc

    def rest(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The API key, or an operator's signature for operator operations (flow registration)."""
        if operator_request(method, path) and "auth" not in kwargs:
            kwargs["auth"] = SigV4(self.outputs["awsCredentials"])
            headers = kwargs.pop("headers", {})
        else:
            headers = {"x-api-key": self.outputs["apiKey"], **kwargs.pop("headers", {})}
        return requests.request(method, self.outputs["taskApiUrl"] + path, headers=headers, timeout=30, **kwargs)

    def register(self, flow_file: str | Path, flow_id: str | None = None) -> str:
        document = yaml.safe_load(Path(flow_file).read_text())
        flow_id = flow_id or document["id"]
        document["id"] = flow_id
        response = self.rest("PUT", f"/flows/{flow_id}", json=document)
        assert response.status_code in (200, 201), response.text
        return flow_id

    def start(self, flow_id: str, task_input: Any, name: str) -> dict[str, Any]:
        response = self.rest("POST", "/tasks", json={"flowId": flow_id, "input": task_input, "name": name})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def wait_final(self, task_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.rest("GET", f"/tasks/{task_id}").json()
            if state["status"] in FINAL or time.monotonic() > deadline:
                return state
            time.sleep(0.05)

    def api_key_ws(self) -> AppSyncWebsocketsTransport:
        auth = AppSyncApiKeyAuthentication(host=self.host, api_key=self.outputs["apiKey"])
        return AppSyncWebsocketsTransport(url=self.outputs["realtimeUrl"], auth=auth)

    def iam_ws(self) -> AppSyncWebsocketsTransport:
        auth = AppSyncIAMAuthentication(host=self.host, region_name=self.stack.region)
        return AppSyncWebsocketsTransport(url=self.outputs["realtimeUrl"], auth=auth)

    def api_key_http(self) -> AIOHTTPTransport:
        return AIOHTTPTransport(url=self.outputs["graphqlUrl"], headers={"x-api-key": self.outputs["apiKey"]})

    def iam_http(self) -> AIOHTTPTransport:
        auth = AppSyncIAMAuthentication(host=self.host, region_name=self.stack.region)
        return AIOHTTPTransport(url=self.outputs["graphqlUrl"], auth=auth)

    def subscriptions(self) -> int:
        return self.stack.appsync.hub.count()

    async def until_subscribed(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.subscriptions() < count:
            assert time.monotonic() < deadline, f"{self.subscriptions()} subscriptions registered, waiting for {count}"
            await asyncio.sleep(0.01)


@pytest.fixture(scope="session")
def deployed(program_stack: LocalStack) -> Deployed:
    """The session's stack of the real program (tests/conftest.py), shared with tests/integration:
    one embedded AWS per process cannot hold two stacks of the same program."""
    return Deployed(program_stack, program_stack.outputs)


def run(coroutine: Any) -> Any:
    """Run a coroutine on a private loop: `asyncio.run` would leave the main thread without the
    current event loop that Pulumi's runtime (a later LocalStack in this process) asks for."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


async def watch(
    transport: AppSyncWebsocketsTransport,
    variables: dict[str, Any],
    until: Callable[[list[dict[str, Any]]], bool],
    received: list[dict[str, Any]],
    timeout: float = 30,
) -> list[dict[str, Any]]:
    """Subscribe and append each `workflowStateUpdated` to `received` until `until(received)` holds."""
    async with Client(transport=transport) as session:

        async def run() -> None:
            async for result in session.subscribe(GraphQLRequest(SUBSCRIPTION, variable_values=variables)):
                received.append(result["workflowStateUpdated"])
                if until(received):
                    return

        await asyncio.wait_for(run(), timeout)
    return received


def final_seen(states: list[dict[str, Any]]) -> bool:
    return any(state["status"] in FINAL for state in states)


def in_order_without_gaps(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a listener keeps: each seq once (delivery is at-least-once); asserts no gap and no reordering."""
    kept: list[dict[str, Any]] = []
    for state in states:
        if kept and state["seq"] <= kept[-1]["seq"]:
            assert state == next(k for k in kept if k["seq"] == state["seq"]), "a redelivery differs from the original"
            continue
        expected = kept[-1]["seq"] + 1 if kept else 1
        assert state["seq"] == expected, f"gap or reorder: got seq {state['seq']}, expected {expected}"
        kept.append(state)
    return kept


__all__ = ["HISTORY", "SUBSCRIPTION", "Deployed", "final_seen", "in_order_without_gaps", "run", "task_id_for", "watch"]
