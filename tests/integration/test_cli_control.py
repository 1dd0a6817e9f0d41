"""`aiwf cancel`, `aiwf redrive` and `aiwf heartbeat`, run as a user runs them (bin/aiwf), against the local stack."""

from __future__ import annotations

import json
import uuid


def _waiting_task(api, stub) -> tuple[str, str]:
    flow_id = f"cli-wait-{uuid.uuid4().hex[:8]}"
    path = f"/notify/{flow_id}"
    wait = {"type": "wait_for_event", "timeoutSeconds": 600, "heartbeatSeconds": 60, "notify": {"url": stub.url + path}}
    document = {"id": flow_id, "startAt": "w", "steps": {"w": {**wait, "next": "ok"}, "ok": {"type": "succeed"}}}
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}}).json()["taskId"]
    token = stub.wait_for(path)[0].body["resumeToken"]
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    return task_id, token


def test_heartbeat_then_cancel_from_the_cli(aiwf, api, stub):
    task_id, token = _waiting_task(api, stub)

    beat = json.loads(aiwf("--json", "heartbeat", task_id, "--token", token).stdout)
    assert beat["taskId"] == task_id and beat["heartbeatAt"]
    assert "heartbeat of task" in aiwf("heartbeat", task_id, "--token", token).stdout
    wrong = aiwf("heartbeat", task_id, "--token", "nope", check_code=5)
    assert "WRONG_TOKEN" in wrong.stderr

    state = json.loads(aiwf("--json", "cancel", task_id, "--reason", "not needed").stdout)
    assert state["status"] == "ABORTED"
    assert state["error"]["errorName"] == "Cancelled" and state["error"]["errorMessage"] == "not needed"
    assert json.loads(aiwf("--json", "cancel", task_id).stdout)["status"] == "ABORTED"  # 200: already
    assert "NOT_WAITING" in aiwf("heartbeat", task_id, "--token", token, check_code=4).stderr


def test_cancel_errors_have_stable_exit_codes(aiwf, api):
    assert "TASK_NOT_FOUND" in aiwf("cancel", str(uuid.uuid4()), check_code=3).stderr
    flow_id = f"cli-done-{uuid.uuid4().hex[:8]}"
    document = {"id": flow_id, "startAt": "ok", "steps": {"ok": {"type": "succeed"}}}
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}}).json()["taskId"]
    assert api.wait_for(task_id)["status"] == "SUCCEEDED"
    assert "ALREADY_FINAL" in aiwf("cancel", task_id, check_code=4).stderr


def test_redrive_from_the_cli(aiwf, api, stub):
    path = f"/cli-redrive/{uuid.uuid4().hex[:8]}"
    stub.reply(path, (500, {"no": 1}), (200, {"ok": True}))
    flow_id = f"cli-redrive-{uuid.uuid4().hex[:8]}"
    call = {"type": "http", "url": stub.url + path, "resultPath": "r", "next": "ok"}
    document = {"id": flow_id, "startAt": "call", "steps": {"call": call, "ok": {"type": "succeed"}}}
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}}).json()["taskId"]
    assert api.wait_for(task_id)["status"] == "FAILED"

    state = json.loads(aiwf("--json", "redrive", task_id).stdout)
    assert state["status"] == "RUNNING" and state["redriveCount"] == 1 and state["currentStep"] == "call"
    assert api.wait_for(task_id)["status"] == "SUCCEEDED"
    assert "NOT_REDRIVABLE" in aiwf("redrive", task_id, check_code=4).stderr
    assert "TASK_NOT_FOUND" in aiwf("redrive", str(uuid.uuid4()), check_code=3).stderr
