"""Faults in the middle of a task: it goes on from its last committed step, once.

A worker killed (`kill -9`) while it runs a step, and a DynamoDB transaction that answers 500
(before and after it committed): the state machine runs the invocation again, the new
invocation re-reads the task, and the task ends SUCCEEDED with a contiguous history in which no
committed step appears twice.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from typing import Any

import pytest

from aiwf.tasks import task_id_for

PROCESS_HANDLER = "aiwf.handlers.orchestrator.process"


def _flow(flow_id: str, url: str) -> dict[str, Any]:
    return {
        "id": flow_id,
        "startAt": "prepare",
        "steps": {
            "prepare": {"type": "transform", "value": {"n": 1}, "resultPath": "prepared", "next": "call"},
            "call": {"type": "http", "url": url, "resultPath": "called", "next": "after"},
            "after": {"type": "transform", "value": {"n": 2}, "resultPath": "after", "next": "done"},
            "done": {"type": "succeed"},
        },
    }


def _steps_in_history(api, task_id: str) -> list[str | None]:
    items = api.call("GET", f"/tasks/{task_id}/history").json()["items"]
    assert [item["seq"] for item in items] == list(range(1, len(items) + 1))  # contiguous, from 1
    return [item["currentStep"] for item in items]


def test_a_worker_killed_mid_step_is_retried_from_the_last_committed_step(api, stub, stack):
    flow_id = f"kill-{uuid.uuid4().hex[:8]}"
    path = f"/slow/{flow_id}"
    url = stub.reply(path, (200, {"ok": True}))
    gate = stub.hold(path)
    assert api.call("PUT", f"/flows/{flow_id}", json=_flow(flow_id, url)).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}}).json()["taskId"]
    try:
        stub.wait_for(path)  # the worker is inside the http step, holding the invocation
        busy = stack.aws.runtime.busy_pids(PROCESS_HANDLER)
        assert len(busy) == 1, busy
        os.kill(busy[0], signal.SIGKILL)
    finally:
        gate.set()
    state = api.wait_for(task_id, timeout=90)
    assert state["status"] == "SUCCEEDED", state
    assert len(stub.received(path)) == 2  # the step that was cut short ran again, once
    steps = _steps_in_history(api, task_id)
    assert steps.count("call") == 1  # "prepare" committed once, and moved the task to "call" once
    assert steps[-1] == "done"


@pytest.mark.parametrize("when", ["before-commit", "after-commit"])
def test_a_transaction_that_answers_500_loses_nothing_and_duplicates_nothing(api, stub, stack, when):
    from moto.dynamodb.models import DynamoDBBackend

    flow_id = f"tx500-{uuid.uuid4().hex[:8]}"
    url = stub.reply(f"/ok/{flow_id}", (200, {"ok": True}))
    assert api.call("PUT", f"/flows/{flow_id}", json=_flow(flow_id, url)).status_code == 201
    name = f"tx500-{uuid.uuid4().hex}"
    task_id = task_id_for(name)
    original = DynamoDBBackend.transact_write_items
    injected = threading.Event()
    lock = threading.Lock()
    writes_of_task = 0

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        nonlocal writes_of_task
        first = next(iter(transact_items[0].values()))
        ours = first.get("Item", {}).get("taskId", {}).get("S") == task_id
        with lock:
            if ours:
                writes_of_task += 1
            fail_now = ours and writes_of_task == 3 and not injected.is_set()  # the third change: a step
            if fail_now:
                injected.set()
        if fail_now and when == "before-commit":
            raise RuntimeError("injected: the embedded DynamoDB failed before writing")
        original(self, transact_items)
        if fail_now:
            raise RuntimeError("injected: the embedded DynamoDB failed after writing")

    DynamoDBBackend.transact_write_items = transact_write_items
    try:
        response = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}, "name": name})
        assert response.json()["taskId"] == task_id
        state = api.wait_for(task_id, timeout=90)
    finally:
        DynamoDBBackend.transact_write_items = original
    assert injected.is_set()
    assert state["status"] == "SUCCEEDED", state
    steps = _steps_in_history(api, task_id)
    assert steps.count("call") == 1 and steps.count("after") == 1
    assert steps[-1] == "done"
