"""POST /tasks/{taskId}/heartbeat on the local stack: heartbeats keep a `heartbeatSeconds` wait
alive; without them the wait ends States.HeartbeatTimeout; the token is checked like a resume's."""

from __future__ import annotations

import time
import uuid
from datetime import datetime


def _start(api, stub, heartbeat: int = 2) -> tuple[str, str]:
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
    token = stub.wait_for(path)[0].body["resumeToken"]
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    return task_id, token


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
