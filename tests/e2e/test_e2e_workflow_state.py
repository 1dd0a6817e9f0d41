"""The Workflow State API end to end, with the real AppSync client (gql) on the local stack."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError

from tests.e2e.conftest import (
    HISTORY,
    REPO_ROOT,
    Deployed,
    final_seen,
    in_order_without_gaps,
    run,
    task_id_for,
    watch,
)

HELLO = REPO_ROOT / "flows" / "hello.yaml"
PUBLISH = gql(
    """
    mutation Publish($input: WorkflowStateInput!) {
      updateWorkflowState(input: $input) { taskId seq status output }
    }
    """
)


def _name() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


async def _history(deployed: Deployed, task_id: str, after_seq: int | None = None) -> list[dict]:
    async with Client(transport=deployed.api_key_http()) as session:
        result = await session.execute(
            GraphQLRequest(HISTORY, variable_values={"taskId": task_id, "afterSeq": after_seq})
        )
    return result["getWorkflowHistory"]


def test_a_subscriber_sees_every_state_change_in_seq_order(deployed: Deployed) -> None:
    _every_change_in_order(deployed, {"name": "Ada"}, "SUCCEEDED")


def test_a_subscriber_sees_a_failure_with_its_normalized_error(deployed: Deployed) -> None:
    _every_change_in_order(deployed, {"name": "nobody"}, "FAILED")


# Not parametrized: pytest reorders parametrized tests across packages, which would start the
# integration package's stack while this one's is still up (one embedded AWS, same resource names).
def _every_change_in_order(deployed: Deployed, task_input: dict, final: str) -> None:
    flow_id = deployed.register(HELLO, "e2e-hello")
    name = _name()
    task_id = task_id_for(name)

    async def scenario() -> list[dict]:
        received: list[dict] = []
        before = deployed.subscriptions()
        listener = asyncio.create_task(watch(deployed.api_key_ws(), {"taskId": task_id}, final_seen, received))
        await deployed.until_subscribed(before + 1)
        await asyncio.to_thread(deployed.start, flow_id, task_input, name)
        await listener
        return received

    received = run(scenario())
    states = in_order_without_gaps(received)
    assert states[0]["status"] == "PENDING" and states[-1]["status"] == final
    assert {state["taskId"] for state in states} == {task_id}
    # Exactly what was recorded, field for field (the history is the source of truth).
    assert states == run(_history(deployed, task_id))
    last = states[-1]
    if final == "SUCCEEDED":
        assert json.loads(last["output"]) == {"greeting": "Hello, Ada!", "name": "Ada"}
        assert last["error"] is None
    else:
        assert last["error"]["errorName"] == "NoName"
        assert last["output"] is None
    assert deployed.wait_final(task_id)["seq"] == last["seq"]


def test_two_subscribers_see_only_their_own_task(deployed: Deployed) -> None:
    flow_id = deployed.register(HELLO, "e2e-hello")
    names = [_name(), _name()]
    ids = [task_id_for(name) for name in names]

    async def scenario() -> list[list[dict]]:
        received: list[list[dict]] = [[], []]
        before = deployed.subscriptions()
        listeners = [
            asyncio.create_task(watch(deployed.api_key_ws(), {"taskId": task_id}, final_seen, into))
            for task_id, into in zip(ids, received, strict=True)
        ]
        await deployed.until_subscribed(before + 2)
        await asyncio.gather(
            *(asyncio.to_thread(deployed.start, flow_id, {"name": f"n{i}"}, n) for i, n in enumerate(names))
        )
        await asyncio.gather(*listeners)
        return received

    received = run(scenario())
    for task_id, states in zip(ids, received, strict=True):
        assert {state["taskId"] for state in states} == {task_id}
        assert in_order_without_gaps(states)[-1]["status"] == "SUCCEEDED"


def test_a_flow_filter_and_a_restricted_selection(deployed: Deployed) -> None:
    """`flowId` filters by equality, and a subscriber gets exactly the fields it selected."""
    flow_id = deployed.register(HELLO, f"e2e-only-{uuid.uuid4().hex[:6]}")
    other = deployed.register(HELLO, "e2e-hello")
    narrow = gql("subscription($f: String) { workflowStateUpdated(flowId: $f) { seq status s: taskId } }")

    async def scenario() -> list[dict]:
        received: list[dict] = []
        before = deployed.subscriptions()

        async def listen() -> None:
            async with Client(transport=deployed.api_key_ws()) as session:
                async for result in session.subscribe(GraphQLRequest(narrow, variable_values={"f": flow_id})):
                    received.append(result["workflowStateUpdated"])
                    if result["workflowStateUpdated"]["status"] == "SUCCEEDED":
                        return

        listener = asyncio.create_task(asyncio.wait_for(listen(), 30))
        await deployed.until_subscribed(before + 1)
        await asyncio.to_thread(deployed.start, other, {"name": "not mine"}, _name())
        await asyncio.to_thread(deployed.start, flow_id, {"name": "mine"}, _name())
        await listener
        return received

    received = run(scenario())
    assert received and all(set(state) == {"seq", "status", "s"} for state in received)
    assert len({state["s"] for state in received}) == 1


def test_an_api_key_client_cannot_publish(deployed: Deployed) -> None:
    variables = {"input": {"taskId": "forged", "flowId": "x", "status": "SUCCEEDED", "seq": 99}}

    async def attempt() -> None:
        async with Client(transport=deployed.api_key_http()) as session:
            await session.execute(GraphQLRequest(PUBLISH, variable_values=variables))

    with pytest.raises(TransportQueryError) as raised:
        run(attempt())
    [error] = raised.value.errors or []
    assert error["errorType"] == "Unauthorized"
    assert error["message"] == "Not Authorized to access updateWorkflowState on type Mutation"
    assert error["path"] == ["updateWorkflowState"]
    assert raised.value.data == {"updateWorkflowState": None}


def test_an_iam_signed_mutation_reaches_an_iam_subscriber(deployed: Deployed) -> None:
    """The backend's path: SigV4 over HTTP publishes; SigV4 on the WebSocket subscribes too."""
    task_id = f"iam-{uuid.uuid4().hex[:8]}"
    output = {"answer": [42, "x"]}
    state = {"taskId": task_id, "flowId": "iam", "status": "SUCCEEDED", "seq": 7, "output": json.dumps(output)}

    async def scenario() -> tuple[dict, list[dict]]:
        received: list[dict] = []
        before = deployed.subscriptions()
        listener = asyncio.create_task(watch(deployed.iam_ws(), {"taskId": task_id}, final_seen, received, 15))
        await deployed.until_subscribed(before + 1)
        async with Client(transport=deployed.iam_http()) as session:
            published = await session.execute(GraphQLRequest(PUBLISH, variable_values={"input": state}))
        await listener
        return published, received

    published, received = run(scenario())
    assert published["updateWorkflowState"] == {
        **{k: state[k] for k in ("taskId", "seq", "status")},
        "output": json.dumps(output, separators=(",", ":")),
    }
    [seen] = received
    assert json.loads(seen["output"]) == output
    assert (seen["seq"], seen["status"], seen["error"]) == (7, "SUCCEEDED", None)


def test_a_listener_that_reconnects_catches_up_from_history(deployed: Deployed) -> None:
    flow_id = deployed.register(HELLO, "e2e-hello")
    name = _name()
    task_id = task_id_for(name)

    async def scenario() -> tuple[list[dict], list[dict]]:
        first: list[dict] = []
        before = deployed.subscriptions()
        # Connected for the first change only, then gone while the task runs on.
        listener = asyncio.create_task(watch(deployed.api_key_ws(), {"taskId": task_id}, lambda got: bool(got), first))
        await deployed.until_subscribed(before + 1)
        await asyncio.to_thread(deployed.start, flow_id, {"name": "Grace"}, name)
        await listener
        await asyncio.to_thread(deployed.wait_final, task_id)
        # Back again: the missed changes come from the history, after the last seq seen.
        last_seen = first[-1]["seq"]
        missed = await _history(deployed, task_id, after_seq=last_seen)
        return first, missed

    first, missed = run(scenario())
    assert first[0]["seq"] == 1
    assert [s["seq"] for s in missed] == list(range(2, 2 + len(missed)))
    combined = in_order_without_gaps([*first, *missed])
    assert combined[-1]["status"] == "SUCCEEDED"
    assert combined == run(_history(deployed, task_id))
    assert run(_history(deployed, task_id, after_seq=combined[-1]["seq"])) == []


def test_queries_read_state_and_list_by_status_and_flow(deployed: Deployed) -> None:
    flow_id = deployed.register(HELLO, f"e2e-list-{uuid.uuid4().hex[:6]}")
    task = deployed.start(flow_id, {"name": "Lin"}, _name())
    final = deployed.wait_final(task["taskId"])
    query = gql(
        """
        query($t: ID!, $f: String) {
          getWorkflowState(taskId: $t) { taskId status seq output }
          listWorkflowStates(flowId: $f, status: SUCCEEDED, limit: 5) { items { taskId } nextToken }
          missing: getWorkflowState(taskId: "no-such-task") { taskId }
        }
        """
    )

    async def query_all() -> dict:
        async with Client(transport=deployed.api_key_http()) as session:
            return await session.execute(GraphQLRequest(query, variable_values={"t": task["taskId"], "f": flow_id}))

    result = run(query_all())
    assert result["getWorkflowState"]["seq"] == final["seq"]
    assert json.loads(result["getWorkflowState"]["output"]) == final["output"]
    assert result["listWorkflowStates"] == {"items": [{"taskId": task["taskId"]}], "nextToken": None}
    assert result["missing"] is None
