"""The Python SDK against the local stack: deploy, run, read, control and watch tasks; the notebook-style example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from aiwf_sdk import (
    BadRequestError,
    Client,
    ConflictError,
    Flow,
    ForbiddenError,
    NotFoundError,
    Succeed,
    TaskTimeoutError,
    Transform,
    WaitForEvent,
)
from aiwf_sdk.steps import Notify

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(stack) -> Client:
    return Client.from_stack_outputs(stack.outputs)


def _hello(flow_id: str) -> Flow:
    return Flow(
        flow_id,
        [
            Transform("greet", value={"greeting": "Hello, {{ input.name }}!"}, result_path="doc"),
            Succeed("done", output_path="doc"),
        ],
    )


def _waiting(client: Client, stub) -> tuple[str, str]:
    """A task parked at a wait_for_event step; returns (taskId, resume token)."""
    flow_id = f"sdk-wait-{uuid.uuid4().hex[:8]}"
    path = f"/notify/{flow_id}"
    wait = WaitForEvent("w", timeout_seconds=600, heartbeat_seconds=60, notify=Notify(url=stub.url + path))
    client.flows.deploy(Flow(flow_id, [wait, Succeed("ok")]))
    task = client.tasks.start(flow_id)
    token = stub.wait_for(path)[0].body["resumeToken"]
    for _ in range(200):
        if client.tasks.get(task.task_id).status == "WAITING":
            return task.task_id, token
        time.sleep(0.05)
    raise AssertionError(f"task {task.task_id} never reached WAITING")


def test_deploy_is_create_or_update_and_run_returns_the_final_state(client):
    flow = _hello(f"sdk-{uuid.uuid4().hex[:8]}")
    first, again = client.flows.deploy(flow), client.flows.deploy(flow)
    assert (first.version, first.created) == (1, True)
    assert (again.version, again.created) == (1, False), "an unchanged document makes no new version"
    assert client.flows.get(flow.id).document == flow.to_document()

    state = client.tasks.run(flow.id, {"name": "Ada"}, timeout=60)
    assert state.succeeded and state.output == {"greeting": "Hello, Ada!"}
    assert [s.seq for s in client.tasks.history(state.task_id)] == list(range(1, state.seq + 1))
    assert client.tasks.get(state.task_id).to_json()["output"] == {"greeting": "Hello, Ada!"}


def test_list_iterates_every_page(client):
    flow = _hello(f"sdk-{uuid.uuid4().hex[:8]}")
    client.flows.deploy(flow)
    started = {client.tasks.start(flow.id, {"name": str(n)}).task_id for n in range(3)}
    listed = [state.task_id for state in client.tasks.list(flow_id=flow.id, limit=1)]
    assert sorted(listed) == sorted(started)
    assert flow.id in {summary.flow_id for summary in client.flows.list(limit=1)}


def test_errors_carry_the_api_code_message_and_details(client, stack):
    with pytest.raises(NotFoundError) as missing:
        client.tasks.get("no-such-task")
    assert (missing.value.status, missing.value.code) == (404, "TASK_NOT_FOUND")

    with pytest.raises(BadRequestError) as invalid:
        client.flows.deploy({"id": "sdk-bad", "startAt": "nowhere", "steps": {"a": {"type": "warp"}}})
    assert invalid.value.code == "INVALID_FLOW"
    assert "/steps/a/type" in {detail["path"] for detail in invalid.value.details}

    with pytest.raises(ForbiddenError) as refused:
        Client(stack.outputs["taskApiUrl"], "wrong").tasks.get("x")
    assert refused.value.code == "FORBIDDEN"


def test_retire_then_start_is_a_conflict_and_a_deploy_revives(client):
    flow = _hello(f"sdk-{uuid.uuid4().hex[:8]}")
    client.flows.deploy(flow)
    assert client.flows.retire(flow.id).retired is True
    with pytest.raises(ConflictError) as retired:
        client.tasks.start(flow.id)
    assert retired.value.code == "FLOW_RETIRED"
    client.flows.deploy(flow)
    assert client.tasks.run(flow.id, {"name": "back"}).succeeded


def test_heartbeat_cancel_redrive_and_a_run_that_times_out(client, stub):
    task_id, token = _waiting(client, stub)
    assert client.tasks.heartbeat(task_id, token).task_id == task_id
    cancelled = client.tasks.cancel(task_id, "not needed")
    assert cancelled.status == "ABORTED" and cancelled.error is not None
    assert cancelled.error.error_name == "Cancelled" and cancelled.error.error_message == "not needed"
    assert client.tasks.cancel(task_id).status == "ABORTED", "cancelling an aborted task again is no error"
    assert client.tasks.redrive(task_id).status == "RUNNING"
    client.tasks.cancel(task_id)

    with pytest.raises(TaskTimeoutError) as timed_out:
        client.tasks.wait(_waiting(client, stub)[0], timeout=1)
    assert timed_out.value.state.status == "WAITING"
    waiting_flow = client.tasks.get(timed_out.value.state.task_id).flow_id
    with pytest.raises(TaskTimeoutError, match=r"is still WAITING after 2 s$") as quick:
        client.tasks.run(waiting_flow, timeout=2)  # the quick run answers WAITING after 2 s
    assert quick.value.code == "TIMEOUT"


def test_resume_and_watch_see_every_state_of_a_task(client, stub):
    task_id, token = _waiting(client, stub)
    seen = []
    for state in client.tasks.watch(task_id=task_id, timeout=60):
        seen.append(state)
        if state.status == "WAITING":
            client.tasks.resume(task_id, token, output={"ok": True})
    seqs = [state.seq for state in seen if state.branch_id is None]
    assert seqs == list(range(seqs[0], seqs[-1] + 1)) and seqs[0] == 1, seqs
    assert seen[-1].status == "SUCCEEDED" and seen[-1].seq == client.tasks.get(task_id).seq
    with pytest.raises(ConflictError):
        client.tasks.resume(task_id, token)


def test_the_notebook_example_deploys_runs_approves_and_prints_the_result(stack, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(stack.outputs))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "sdk"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "approve_and_run.py"), str(outputs)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "flow document-triage version" in run.stdout
    assert "WAITING approve" in run.stdout and "approved approve as ada" in run.stdout
    assert "status: SUCCEEDED" in run.stdout
    output = json.loads(run.stdout.split("output: ", 1)[1].splitlines()[0])
    assert output == {"label": "urgent", "action": "escalated", "approvedBy": "ada"}
