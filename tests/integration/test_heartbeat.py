"""POST /tasks/{taskId}/heartbeat on the local stack: heartbeats keep a `heartbeatSeconds` wait
alive; without them the wait ends States.HeartbeatTimeout; the token is checked like a resume's."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import requests


def _start(api, stub, heartbeat: int = 2) -> tuple[str, str]:
    task_id, notified = _start_notified(api, stub, heartbeat)
    return task_id, notified["resumeToken"]


def _start_notified(api, stub, heartbeat: int = 2) -> tuple[str, dict]:
    flow_id = f"beat-{uuid.uuid4().hex[:8]}"
    path = f"/notify/{flow_id}"
    document = {
        "id": flow_id,
        "startAt": "approve",
        "steps": {
            "approve": {
                "type": "wait_for_event",
                "timeoutSeconds": 60,
                "heartbeatSeconds": heartbeat,
                "notify": {"url": stub.url + path},
                "resultPath": "approval",
                "next": "done",
            },
            "done": {"type": "succeed"},
        },
    }
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}})
    assert started.status_code == 201, started.text
    task_id = started.json()["taskId"]
    notified = stub.wait_for(path)[0].body
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    return task_id, notified


def _beat(api, task_id: str, token: str):
    return api.call("POST", f"/tasks/{task_id}/heartbeat", json={"resumeToken": token})


def test_heartbeats_keep_a_wait_alive_past_its_heartbeat_seconds(api, stub):
    task_id, token = _start(api, stub)
    seq = api.call("GET", f"/tasks/{task_id}").json()["seq"]
    until = time.monotonic() + 5
    while time.monotonic() < until:  # 5 s of heartbeats every second: 2.5 heartbeat intervals
        beat = _beat(api, task_id, token)
        assert beat.status_code == 200, beat.text
        assert set(beat.json()) == {"taskId", "heartbeatAt"} and beat.json()["taskId"] == task_id
        datetime.fromisoformat(beat.json()["heartbeatAt"].replace("Z", "+00:00"))
        time.sleep(1)
    state = api.call("GET", f"/tasks/{task_id}").json()
    assert state["status"] == "WAITING" and state["seq"] == seq  # a heartbeat is no state change

    resumed = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED", "output": 1})
    assert resumed.status_code == 202, resumed.text
    state = api.wait_for(task_id)
    assert state["status"] == "SUCCEEDED" and state["output"]["approval"] == 1, state
    after = _beat(api, task_id, token)
    assert after.status_code == 409 and after.json()["error"]["code"] == "NOT_WAITING"


def test_without_heartbeats_the_wait_ends_with_heartbeat_timeout(api, stub):
    task_id, token = _start(api, stub)
    state = api.wait_for(task_id, timeout=15)
    assert state["status"] == "FAILED", state
    assert state["error"]["errorName"] == "States.HeartbeatTimeout", state["error"]
    late = _beat(api, task_id, token)
    assert late.status_code in (409, 410), late.text


def test_a_heartbeat_needs_the_waits_own_token(api, stub):
    task_id, token = _start(api, stub, heartbeat=30)
    wrong = _beat(api, task_id, token + "x")
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "WRONG_TOKEN"
    unknown = _beat(api, str(uuid.uuid4()), token)
    assert unknown.status_code == 404
    bad = api.call("POST", f"/tasks/{task_id}/heartbeat", json={"token": token})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_REQUEST"
    empty = api.call("POST", f"/tasks/{task_id}/heartbeat")
    assert empty.status_code == 400
    assert _beat(api, task_id, token).status_code == 200
    assert api.call("POST", f"/tasks/{task_id}/cancel", json={}).status_code == 202


def test_the_callback_url_takes_heartbeats_with_the_token_alone(api, stub):
    """`POST {callbackUrl}/heartbeat` with no API key keeps the wait alive as the task path does."""
    task_id, notified = _start_notified(api, stub)
    beat_url, token = f"{notified['callbackUrl']}/heartbeat", notified["resumeToken"]
    until = time.monotonic() + 4
    while time.monotonic() < until:  # 4 s of heartbeats every second: twice the heartbeat interval
        beat = requests.post(beat_url, json={"resumeToken": token}, timeout=30)
        assert beat.status_code == 200 and beat.json()["taskId"] == task_id, beat.text
        time.sleep(1)
    assert api.call("GET", f"/tasks/{task_id}").json()["status"] == "WAITING"
    wrong = requests.post(beat_url, json={"resumeToken": "not-it"}, timeout=30)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "WRONG_TOKEN"

    resumed = requests.post(notified["callbackUrl"], json={"resumeToken": token, "status": "SUCCEEDED"}, timeout=30)
    assert resumed.status_code == 202, resumed.text
    assert api.wait_for(task_id)["status"] == "SUCCEEDED"
    after = requests.post(beat_url, json={"resumeToken": token}, timeout=30)
    assert after.status_code == 409 and after.json()["error"]["code"] == "NOT_WAITING"
