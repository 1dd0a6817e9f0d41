"""Two tenants' tasks at once (50 each) with a subscriber per tenant: 0 cross-tenant deliveries.

The subscription's tenant filter is set by the server from the subscriber's identity, not from
its arguments: a subscriber that asks for every state (no arguments at all) still receives its
own tenant's only, and an operator (IAM) receives both tenants'.

Tenant `default` starts through the API key (REST); tenant B is started by an operator over
GraphQL (`startTask(tenantId:)`). Its subscribers, each over the real-time WebSocket: the API key
(tenant `default`), a user of tenant B (its ID token in the handshake's `Authorization`, as the
console and `aiwf watch` send it) and an operator. Each tenant's subscriber receives every state
change of its own tenant's tasks (each task's seqs 1..final, none missing) and none of the other's.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gql import Client, GraphQLRequest, gql
from gql.transport.appsync_auth import AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport

from tests.cognito_users import sign_in
from tests.e2e.conftest import FINAL, REPO_ROOT, Deployed, run

HELLO = REPO_ROOT / "flows" / "hello.yaml"
TASKS_PER_TENANT = 50
WATCH = gql("subscription { workflowStateUpdated { taskId tenantId status seq branchId } }")
START = gql(
    "mutation Start($flowId: String!, $input: AWSJSON, $tenantId: String) {"
    "  startTask(flowId: $flowId, input: $input, tenantId: $tenantId) { taskId tenantId status }"
    "}"
)


def test_two_tenants_under_load_each_subscriber_sees_only_its_tenant(deployed: Deployed) -> None:
    flow_id = deployed.register(HELLO, f"e2e-tenants-{uuid.uuid4().hex[:6]}")
    tenant_b = f"e2e-b-{uuid.uuid4().hex[:6]}"
    id_token = sign_in(deployed.outputs, f"{tenant_b}-user", tenant_b)

    def user_ws() -> AppSyncWebsocketsTransport:
        auth = AppSyncJWTAuthentication(host=deployed.host, jwt=id_token)
        return AppSyncWebsocketsTransport(url=deployed.outputs["realtimeUrl"], auth=auth)

    def start_default(i: int) -> str:
        response = deployed.rest("POST", "/tasks", json={"flowId": flow_id, "input": {"name": f"a{i}"}})
        assert response.status_code == 201, response.text
        assert response.json()["tenantId"] == "default"
        return response.json()["taskId"]

    async def start_b(session: Any, i: int) -> str:
        variables = {"flowId": flow_id, "input": json.dumps({"name": f"b{i}"}), "tenantId": tenant_b}
        result = await session.execute(GraphQLRequest(START, variable_values=variables))
        assert result["startTask"]["tenantId"] == tenant_b
        return result["startTask"]["taskId"]

    async def scenario() -> tuple[dict[str, list[dict]], set[str], set[str]]:
        received: dict[str, list[dict]] = {"key": [], "user": [], "operator": []}
        started: dict[str, set[str]] = {"default": set(), tenant_b: set()}

        def done(states: list[dict], tenants: tuple[str, ...]) -> bool:
            wanted = set().union(*(started[t] for t in tenants))
            finished = {s["taskId"] for s in states if s["status"] in FINAL and s["branchId"] is None}
            return len(wanted) == TASKS_PER_TENANT * len(tenants) and wanted <= finished

        async def listen(transport: Any, into: list[dict]) -> None:
            async with Client(transport=transport) as session:
                async for result in session.subscribe(GraphQLRequest(WATCH)):
                    into.append(result["workflowStateUpdated"])

        before = deployed.subscriptions()
        listeners = [
            asyncio.create_task(listen(deployed.api_key_ws(), received["key"])),
            asyncio.create_task(listen(user_ws(), received["user"])),
            asyncio.create_task(listen(deployed.iam_ws(), received["operator"])),
        ]
        await deployed.until_subscribed(before + 3)
        with ThreadPoolExecutor(8) as pool:
            default_ids = pool.map(start_default, range(TASKS_PER_TENANT))
            async with Client(transport=deployed.iam_http()) as session:
                b_ids = [await start_b(session, i) for i in range(TASKS_PER_TENANT)]
            started["default"].update(default_ids)
        started[tenant_b].update(b_ids)
        deadline = time.monotonic() + 240
        while not (
            done(received["key"], ("default",))
            and done(received["user"], (tenant_b,))
            and done(received["operator"], ("default", tenant_b))
        ):
            assert time.monotonic() < deadline, {name: len(states) for name, states in received.items()}
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a late cross-tenant delivery would arrive now
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        return received, started["default"], started[tenant_b]

    began = time.monotonic()
    received, default_ids, b_ids = run(scenario())
    key_states, user_states = received["key"], received["user"]
    cross = [s for s in key_states if s["tenantId"] != "default" or s["taskId"] in b_ids]
    assert cross == [], f"{len(cross)} cross-tenant deliveries to the API key subscriber"
    cross = [s for s in user_states if s["tenantId"] != tenant_b or s["taskId"] not in b_ids]
    assert cross == [], f"{len(cross)} cross-tenant deliveries to tenant B's user"
    key_changes = every_change(key_states, default_ids)
    user_changes = every_change(user_states, b_ids)
    assert every_change(received["operator"], default_ids | b_ids) == key_changes + user_changes
    assert {s["tenantId"] for s in received["operator"] if s["taskId"] in b_ids} == {tenant_b}
    print(
        f"tenants: {2 * TASKS_PER_TENANT} tasks in {time.monotonic() - began:.1f} s; "
        f"key subscriber {key_changes} state changes ({len(key_states)} deliveries), "
        f"tenant B's user {user_changes} ({len(user_states)}), 0 cross-tenant; "
        f"operator {key_changes + user_changes} ({len(received['operator'])})"
    )


def every_change(states: list[dict[str, Any]], task_ids: set[str]) -> int:
    """Asserts that `states` hold every state change of each of `task_ids` (seq 1 to its final
    state's, none missing); returns how many changes that is (a redelivery counts once)."""
    seqs: dict[str, set[int]] = {task_id: set() for task_id in task_ids}
    final: dict[str, int] = {}
    for state in states:
        if state["taskId"] in seqs and state["branchId"] is None:
            seqs[state["taskId"]].add(state["seq"])
            if state["status"] in FINAL:
                final[state["taskId"]] = state["seq"]
    assert set(final) == task_ids, f"{len(task_ids) - len(final)} tasks without their final state"
    missing = {task_id: set(range(1, final[task_id] + 1)) - seqs[task_id] for task_id in task_ids}
    assert not any(missing.values()), {task_id: gaps for task_id, gaps in missing.items() if gaps}
    return sum(len(seen) for seen in seqs.values())
