"""Python clients over the TLS twin of the real program: requests, and gql over https:// and wss://.

Each trusts the stack's CA as docs/local.md shows (a CA file; verification never turned off), and
gets what the plain port gives: the same tasks, the same keys, the same subscriptions.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from urllib.parse import urlparse

import pytest
import requests
from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.appsync_auth import AppSyncApiKeyAuthentication, AppSyncIAMAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport

from tests.e2e.conftest import REPO_ROOT, Deployed, final_seen, in_order_without_gaps, run, task_id_for, watch

HELLO = REPO_ROOT / "flows" / "hello.yaml"


def _ca(deployed: Deployed) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=deployed.outputs["tls"]["caBundle"])


def test_requests_reaches_the_task_api_over_https(deployed: Deployed) -> None:
    tls = deployed.outputs["tls"]
    flow_id = deployed.register(HELLO, "e2e-tls-hello")
    name = f"tls-{uuid.uuid4().hex}"
    # verify= per request: requests lets REQUESTS_CA_BUNDLE in the environment override a Session's verify
    headers, ca = {"x-api-key": deployed.outputs["apiKey"]}, tls["caBundle"]
    body = {"flowId": flow_id, "input": {"name": "Tls"}, "name": name}
    started = requests.post(f"{tls['taskApiUrl']}/tasks", json=body, headers=headers, timeout=30, verify=ca)
    assert started.status_code == 201, started.text
    assert started.json()["taskId"] == task_id_for(name)
    assert deployed.wait_final(task_id_for(name))["status"] == "SUCCEEDED"
    # the same task through the plain port: one stack behind both
    over_tls = requests.get(f"{tls['taskApiUrl']}/tasks/{task_id_for(name)}", headers=headers, timeout=30, verify=ca)
    assert over_tls.json() == deployed.rest("GET", f"/tasks/{task_id_for(name)}").json()
    refused = requests.get(f"{tls['taskApiUrl']}/tasks", timeout=30, verify=ca)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    with pytest.raises(requests.exceptions.SSLError):  # without the CA, the certificate is refused
        requests.get(f"{tls['taskApiUrl']}/tasks", timeout=30)


def test_gql_over_https_with_the_api_key_and_signed_with_the_local_credentials(deployed: Deployed) -> None:
    tls = deployed.outputs["tls"]
    host = urlparse(tls["graphqlUrl"]).netloc
    query = gql("query($f: String!) { getFlow(flowId: $f) { flowId retired } }")
    flow_id = deployed.register(HELLO, "e2e-tls-hello")

    async def both() -> tuple[dict, dict]:
        by_key = AIOHTTPTransport(
            url=tls["graphqlUrl"], headers={"x-api-key": deployed.outputs["apiKey"]}, ssl=_ca(deployed)
        )
        signed = AIOHTTPTransport(
            url=tls["graphqlUrl"],
            auth=AppSyncIAMAuthentication(host=host, region_name=deployed.stack.region),
            ssl=_ca(deployed),
        )
        request = GraphQLRequest(query, variable_values={"f": flow_id})
        async with Client(transport=by_key) as key_session, Client(transport=signed) as iam_session:
            return await key_session.execute(request), await iam_session.execute(request)

    by_key, by_iam = run(both())
    assert by_key == by_iam == {"getFlow": {"flowId": flow_id, "retired": False}}


def test_gql_subscribes_over_wss_and_sees_a_whole_task(deployed: Deployed) -> None:
    tls = deployed.outputs["tls"]
    flow_id = deployed.register(HELLO, "e2e-tls-hello")
    name = f"tls-{uuid.uuid4().hex}"
    task_id = task_id_for(name)
    auth = AppSyncApiKeyAuthentication(host=urlparse(tls["graphqlUrl"]).netloc, api_key=deployed.outputs["apiKey"])
    transport = AppSyncWebsocketsTransport(url=tls["realtimeUrl"], auth=auth, ssl=_ca(deployed))

    async def scenario() -> list[dict]:
        received: list[dict] = []
        before = deployed.subscriptions()
        listener = asyncio.create_task(watch(transport, {"taskId": task_id}, final_seen, received))
        await deployed.until_subscribed(before + 1)
        await asyncio.to_thread(deployed.start, flow_id, {"name": "Wss"}, name)
        await listener
        return received

    states = in_order_without_gaps(run(scenario()))
    assert [state["seq"] for state in states] == list(range(1, len(states) + 1)) and len(states) >= 3
    assert states[0]["status"] == "PENDING" and states[-1]["status"] == "SUCCEEDED"
    assert {state["taskId"] for state in states} == {task_id}
