"""An outage of the Workflow State API loses no state change: what the publisher dead-lettered is
replayed from the on-failure queue once the API answers again, and `seq` drops the duplicates.

The outage is real for the functions that publish: their `GRAPHQL_URL` points at a closed port (a
configuration update, so their warm workers are replaced, as in AWS). Tasks run meanwhile; the
stream mapping's own settings (5 retries, ~1.85 s of backoff locally) dead-letter the batches;
the replayer fails too and backs its messages off. Then the URL is restored and the subscriber,
connected all along, must see every history record of every task. The outage lasts until every
batch was dead-lettered (a few seconds); `bench/publisher_outage.py` holds it for 60 s.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from gql import Client, GraphQLRequest

from local import dynamodb_event_source
from tests.e2e.conftest import REPO_ROOT, SUBSCRIPTION, Deployed, run

HELLO = REPO_ROOT / "flows" / "hello.yaml"
PUBLISHERS = ("state-publisher", "state-replayer")
TASKS = 6
# Locally the replayer retries a message after 1 s, then 2 s (in the cloud 30 s doubling to 15 min).
LOCAL_BACKOFF = {"REPLAY_BACKOFF_SECONDS": "1", "REPLAY_BACKOFF_MAX_SECONDS": "2"}


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Outage:
    """Points the publishing functions at a dead endpoint and back."""

    def __init__(self, deployed: Deployed) -> None:
        self.lam = deployed.stack.client("lambda")
        self.names = [f"aiwf-{deployed.stack.stage}-{name}" for name in PUBLISHERS]
        self.original = {
            name: self.lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
            for name in self.names
        }

    def _set(self, extra: dict[str, str]) -> None:
        for name, variables in self.original.items():
            replay = LOCAL_BACKOFF if name.endswith("replayer") else {}
            self.lam.update_function_configuration(
                FunctionName=name, Environment={"Variables": {**variables, **replay, **extra}}
            )

    def begin(self) -> None:
        self._set({"GRAPHQL_URL": f"http://127.0.0.1:{_closed_port()}/graphql"})

    def end(self) -> None:
        self._set({})


@pytest.fixture
def outage(deployed: Deployed) -> Iterator[Outage]:
    down = Outage(deployed)
    down._set({})  # the local backoff for the replayer, before anything fails
    yield down
    down.end()


def _dead_lettered() -> int:
    return sum(len(delivery.failed_batches) for delivery in dynamodb_event_source.stream_deliveries().values())


def _streams_idle() -> bool:
    return all(delivery.idle() for delivery in dynamodb_event_source.stream_deliveries().values())


def _history(deployed: Deployed, task_ids: list[str]) -> set[tuple[str, Any, int]]:
    keys = set()
    for task_id in task_ids:
        items = deployed.rest("GET", f"/tasks/{task_id}/history").json()["items"]
        keys |= {(item["taskId"], item.get("branchId"), item["seq"]) for item in items}
    return keys


def _kept_by_seq(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a listener keeps once it drops what it already has: each (taskId, branchId, seq) once
    (a replayed state may arrive after newer ones; the gap rule fetches it from the history)."""
    seen: set[tuple[str, Any, int]] = set()
    kept = []
    for state in received:
        key = (state["taskId"], state["branchId"], state["seq"])
        if key not in seen:
            seen.add(key)
            kept.append(state)
    return kept


def test_a_publisher_outage_loses_no_state_change(deployed: Deployed, outage: Outage) -> None:
    flow_id = deployed.register(HELLO, f"outage-{uuid.uuid4().hex[:6]}")
    received: list[dict[str, Any]] = []
    task_ids: list[str] = []
    report: dict[str, Any] = {}

    async def scenario() -> None:
        async with Client(transport=deployed.api_key_ws()) as session:

            async def listen() -> None:
                request = GraphQLRequest(SUBSCRIPTION, variable_values={"flowId": flow_id})
                async for result in session.subscribe(request):
                    received.append(result["workflowStateUpdated"])

            listener = asyncio.create_task(listen())
            await deployed.until_subscribed(1)
            before = _dead_lettered()
            await asyncio.to_thread(outage.begin)
            started = time.monotonic()
            for index in range(TASKS):
                state = await asyncio.to_thread(
                    deployed.start, flow_id, {"name": f"n{index}"}, f"outage-{flow_id}-{index}"
                )
                task_ids.append(state["taskId"])
            for task_id in task_ids:
                final = await asyncio.to_thread(deployed.wait_final, task_id, 60)
                assert final["status"] == "SUCCEEDED", final
            # Every change was committed; wait until the stream mapping gave up on all of them.
            deadline = time.monotonic() + 60
            while not (_streams_idle() and _dead_lettered() > before) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            report["dead_lettered"] = _dead_lettered() - before
            report["received_during_outage"] = len(received)
            report["outage_seconds"] = round(time.monotonic() - started, 1)
            await asyncio.to_thread(outage.end)
            expected = await asyncio.to_thread(_history, deployed, task_ids)
            report["history_records"] = len(expected)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                got = {(s["taskId"], s["branchId"], s["seq"]) for s in received}
                if expected <= got:
                    break
                await asyncio.sleep(0.2)
            listener.cancel()

    run(scenario())
    expected = _history(deployed, task_ids)
    got = {(s["taskId"], s["branchId"], s["seq"]) for s in received}
    kept = _kept_by_seq(received)
    print(
        f"outage {report['outage_seconds']} s, {report['dead_lettered']} batches dead-lettered, "
        f"{report['history_records']} history records: received {len(received)}, "
        f"missing {len(expected - got)}, duplicates {len(received) - len(kept)}"
    )
    assert report["dead_lettered"] > 0, "the outage never exhausted the publisher's retries: it tested nothing"
    assert report["received_during_outage"] == 0, "the API was not down"
    assert expected - got == set(), f"never delivered: {sorted(expected - got)}"
    assert len(kept) == len(expected) and {(s["taskId"], s["branchId"], s["seq"]) for s in kept} == expected
    assert got <= expected, "a delivered state exists in no history record"
