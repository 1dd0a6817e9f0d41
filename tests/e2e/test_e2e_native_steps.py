"""A task with a callback wait, a poll and parallel branches, watched by one gql subscriber.

Each record keeps its own `seq`: the task (branchId null) and each parallel branch (its branchId).
A listener orders and checks gaps per (taskId, branchId); the task's own changes are 1..N.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Deployed, in_order_without_gaps, run, task_id_for, watch
from tests.integration.stub_server import StubServer, start_stub


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    server = start_stub()
    yield server
    server.server.shutdown()


def _flow(stub: StubServer, notify_path: str, job_url: str) -> dict[str, Any]:
    return {
        "startAt": "prepare",
        "steps": {
            "prepare": {
                "type": "transform",
                "value": {"doc": "{{ input.doc }}"},
                "resultPath": "doc",
                "next": "approve",
            },
            "approve": {
                "type": "wait_for_event",
                "timeoutSeconds": 60,
                "notify": {"url": stub.url + notify_path},
                "resultPath": "approval",
                "next": "report",
            },
            "report": {
                "type": "poll",
                "check": {"type": "http", "url": job_url},
                "until": {"path": "state", "equals": "done"},
                "intervalSeconds": 1,
                "maxAttempts": 5,
                "resultPath": "report",
                "next": "fanout",
            },
            "fanout": {
                "type": "parallel",
                "branches": [
                    {"id": "a", "startAt": "x", "steps": {"x": {"type": "succeed"}}},
                    {
                        "id": "b",
                        "startAt": "y",
                        "steps": {
                            "y": {"type": "transform", "value": "{{ doc.doc }}!", "resultPath": "shout", "next": "z"},
                            "z": {"type": "succeed", "outputPath": "shout"},
                        },
                    },
                ],
                "resultPath": "branches",
                "next": "done",
            },
            "done": {"type": "succeed"},
        },
    }


def test_every_change_of_a_wait_a_poll_and_parallel_branches_arrives_in_order(
    deployed: Deployed, stub: StubServer
) -> None:
    notify_path = f"/notify/{uuid.uuid4().hex}"
    job_url = stub.reply(f"/job/{uuid.uuid4().hex}", (200, {"state": "running"}), (200, {"state": "done"}))
    flow_id = f"e2e-native-{uuid.uuid4().hex[:6]}"
    document = {"id": flow_id, **_flow(stub, notify_path, job_url)}
    assert deployed.rest("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    name = f"e2e-{uuid.uuid4().hex[:12]}"
    task_id = task_id_for(name)

    def task_done(received: list[dict]) -> bool:
        return any(s["branchId"] is None and s["status"] in ("SUCCEEDED", "FAILED") for s in received)

    async def scenario() -> list[dict]:
        received: list[dict] = []
        before = deployed.subscriptions()
        listener = asyncio.create_task(watch(deployed.api_key_ws(), {"taskId": task_id}, task_done, received, 60))
        await deployed.until_subscribed(before + 1)
        await asyncio.to_thread(deployed.start, flow_id, {"doc": "memo"}, name)
        notified = (await asyncio.to_thread(stub.wait_for, notify_path))[0].body
        resumed = await asyncio.to_thread(
            deployed.rest,
            "PUT",
            f"/tasks/{task_id}",
            json={"resumeToken": notified["resumeToken"], "status": "SUCCEEDED", "output": {"ok": True}},
        )
        assert resumed.status_code == 202, resumed.text
        await listener
        return received

    received = run(scenario())
    assert {s["taskId"] for s in received} == {task_id}
    streams: dict[str | None, list[dict]] = {}
    for state in received:
        streams.setdefault(state["branchId"], []).append(state)
    task = in_order_without_gaps(streams.pop(None))
    statuses = [s["status"] for s in task]
    assert statuses[0] == "PENDING" and statuses[-1] == "SUCCEEDED", statuses
    waiting = next(s for s in task if s["status"] == "WAITING")
    assert json.loads(waiting["waitingFor"])["stepId"] == "approve" and waiting["currentStep"] == "approve"
    assert "POLLING" in statuses
    assert notified_token_never_published(received, stub, notify_path)
    assert set(streams) == {"a", "b"}, sorted(streams, key=str)
    for branch, states in streams.items():
        ordered = in_order_without_gaps(states)
        assert ordered[-1]["status"] == "SUCCEEDED", (branch, [s["status"] for s in ordered])
    assert json.loads(in_order_without_gaps(streams["b"])[-1]["output"]) == "memo!"
    history = run(_task_history(deployed, task_id))
    assert [s["seq"] for s in history] == [s["seq"] for s in task]


def notified_token_never_published(received: list[dict], stub: StubServer, notify_path: str) -> bool:
    token = stub.received(notify_path)[0].body["resumeToken"]
    return token not in json.dumps(received)


async def _task_history(deployed: Deployed, task_id: str) -> list[dict]:
    from gql import Client, GraphQLRequest

    from tests.e2e.conftest import HISTORY

    async with Client(transport=deployed.api_key_http()) as session:
        result = await session.execute(GraphQLRequest(HISTORY, variable_values={"taskId": task_id}))
    return result["getWorkflowHistory"]
