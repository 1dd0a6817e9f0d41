"""wait_for_event, PUT /tasks/{taskId} and POST /callbacks/{waitId} on the local stack: the resume
token is the backend's own, it travels only to notify.url, and with the wait's callbackUrl it
resumes the task with no other credential."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests


def _waiting_flow(notify_url: str, timeout: int = 30, heartbeat: int | None = None) -> dict:
    wait = {
        "type": "wait_for_event",
        "timeoutSeconds": timeout,
        "notify": {"url": notify_url},
        "resultPath": "approval",
        "next": "done",
        "catch": "rejected",
    }
    if heartbeat:
        wait["heartbeatSeconds"] = heartbeat
    return {
        "startAt": "prepare",
        "steps": {
            "prepare": {"type": "transform", "value": "{{ input.doc }}", "resultPath": "doc", "next": "approve"},
            "approve": wait,
            "done": {"type": "succeed"},
            "rejected": {"type": "transform", "value": "{{ error.errorName }}", "resultPath": "why", "next": "no"},
            "no": {"type": "fail", "error": "Rejected", "cause": "rejected: {{ why }}"},
        },
    }


def _start(api, stub, **flow_args) -> tuple[str, str]:
    """Register a waiting flow, start a task, return (taskId, notify path)."""
    flow_id = f"wait-{uuid.uuid4().hex[:8]}"
    path = f"/notify/{flow_id}"
    document = {**_waiting_flow(stub.url + path, **flow_args), "id": flow_id}
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"doc": "contract.pdf"}})
    assert started.status_code == 201, started.text
    return started.json()["taskId"], path


NOTIFICATION = {"taskId", "stepId", "branchId", "waitId", "resumeToken", "callbackUrl", "input"}


def _notification(stub, path: str) -> dict:
    notified = stub.wait_for(path)[0]
    assert set(notified.body) == NOTIFICATION
    assert notified.body["stepId"] == "approve" and notified.body["input"] == {"doc": "contract.pdf"}
    return notified.body


def _token(stub, path: str) -> str:
    return _notification(stub, path)["resumeToken"]


def test_the_callback_url_resumes_the_wait_with_the_token_alone(api, stub, stack):
    task_id, path = _start(api, stub)
    notified = _notification(stub, path)
    token, wait_id = notified["resumeToken"], notified["waitId"]
    assert notified["taskId"] == task_id and notified["branchId"] is None
    assert notified["callbackUrl"] == f"{api.url}/callbacks/{wait_id}"
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    # No API key: the token in the body is the only credential.
    wrong = requests.post(notified["callbackUrl"], json={"resumeToken": "not-it", "status": "SUCCEEDED"}, timeout=30)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "WRONG_TOKEN"
    unknown = requests.post(f"{api.url}/callbacks/no-such-wait", json={"resumeToken": token}, timeout=30)
    assert unknown.status_code == 400  # the body is checked first: status is required
    unknown = requests.post(
        f"{api.url}/callbacks/no-such-wait", json={"resumeToken": token, "status": "SUCCEEDED"}, timeout=30
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "WAIT_NOT_FOUND"
    resumed = requests.post(
        notified["callbackUrl"], json={"resumeToken": token, "status": "SUCCEEDED", "output": {"by": "url"}}, timeout=30
    )
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["taskId"] == task_id and token not in resumed.text
    state = api.wait_for(task_id)
    assert state["status"] == "SUCCEEDED" and state["output"]["approval"] == {"by": "url"}, state
    again = requests.post(notified["callbackUrl"], json={"resumeToken": token, "status": "SUCCEEDED"}, timeout=30)
    assert again.status_code == 409 and again.json()["error"]["code"] == "NOT_WAITING"

    # The token never reached Step Functions: the execution's history does not hold it.
    sfn = stack.client("stepfunctions")
    arn = stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}"
    history = json.dumps(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"], default=str)
    assert "TaskSubmitted" in history or "TaskScheduled" in history
    assert token not in history and wait_id in json.dumps(notified)


def test_a_resume_continues_the_task_with_the_output_at_result_path(api, stub):
    task_id, path = _start(api, stub)
    token = _token(stub, path)

    waiting = api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    assert waiting["waitingFor"]["stepId"] == "approve" and waiting["currentStep"] == "approve"
    assert token not in str(waiting) and token not in api.call("GET", f"/tasks/{task_id}/history").text

    resumed = api.call(
        "PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED", "output": {"ok": 1}}
    )
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["status"] == "RUNNING"

    state = api.wait_for(task_id)
    assert state["status"] == "SUCCEEDED", state
    assert state["output"]["approval"] == {"ok": 1} and state["output"]["doc"] == "contract.pdf"
    statuses = [item["status"] for item in api.call("GET", f"/tasks/{task_id}/history").json()["items"]]
    assert "WAITING" in statuses and statuses[-1] == "SUCCEEDED"

    again = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "NOT_WAITING"


def test_a_failed_resume_fails_the_step_and_its_catch_applies(api, stub):
    task_id, path = _start(api, stub)
    token = _token(stub, path)
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    body = {"resumeToken": token, "status": "FAILED", "error": {"errorName": "Declined", "errorMessage": "no budget"}}
    assert api.call("PUT", f"/tasks/{task_id}", json=body).status_code == 202

    state = api.wait_for(task_id)
    assert state["status"] == "FAILED"
    assert state["error"]["errorName"] == "Rejected"
    assert state["error"]["errorMessage"] == "rejected: Declined"


def test_wrong_token_is_403_and_a_used_token_is_409(api, stub):
    task_id, path = _start(api, stub)
    token = _token(stub, path)
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    wrong = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token + "x", "status": "SUCCEEDED"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "WRONG_TOKEN"

    first = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED"})
    second = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert first.status_code == 202
    assert second.status_code == 409
    assert api.wait_for(task_id)["status"] == "SUCCEEDED"


def test_two_concurrent_resumes_with_one_token_have_one_winner(api, stub):
    task_id, path = _start(api, stub)
    token = _token(stub, path)
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    body = {"resumeToken": token, "status": "SUCCEEDED", "output": "once"}
    barrier = threading.Barrier(4)

    def resume(_: int) -> int:
        session = requests.Session()
        barrier.wait()
        return session.put(
            f"{api.url}/tasks/{task_id}", json=body, headers={"x-api-key": api.api_key}, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(resume, range(4)))

    assert statuses == [202, 409, 409, 409]
    state = api.wait_for(task_id)
    assert state["status"] == "SUCCEEDED" and state["output"]["approval"] == "once"


def test_a_wait_that_times_out_fails_the_task_and_a_late_resume_is_410(api, stub):
    task_id, path = _start(api, stub, timeout=1)
    token = _token(stub, path)

    state = api.wait_for(task_id)

    assert state["status"] == "FAILED"
    assert state["error"]["errorName"] == "States.Timeout"
    assert state["error"]["retryable"] is True and state["error"]["stepId"] == "approve"
    late = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert late.status_code == 410 and late.json()["error"]["code"] == "WAIT_EXPIRED"


def test_a_missed_heartbeat_fails_the_task_long_before_its_timeout(api, stub):
    task_id, path = _start(api, stub, timeout=60, heartbeat=1)
    _token(stub, path)

    state = api.wait_for(task_id, timeout=15)

    assert state["status"] == "FAILED"
    # The heartbeat (1 s), not the timeout (60 s), ended it: AWS's name for that, which the local
    # engine gives too (local/moto_glue/stepfunctions.py names heartbeat timeouts).
    assert state["error"]["errorName"] == "States.HeartbeatTimeout"
    assert state["error"]["retryable"] is True and state["error"]["stepId"] == "approve"


@pytest.mark.parametrize(
    "body",
    [
        {"status": "SUCCEEDED"},
        {"resumeToken": "t", "status": "DONE"},
        {"resumeToken": "t", "status": "FAILED", "error": {"errorMessage": "no name"}},
        {"resumeToken": "t", "status": "SUCCEEDED", "extra": 1},
    ],
)
def test_a_bad_resume_body_is_400(api, body):
    response = api.call("PUT", "/tasks/whatever", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_REQUEST"


def test_resuming_an_unknown_task_is_404(api):
    response = api.call("PUT", "/tasks/nope", json={"resumeToken": "t", "status": "SUCCEEDED"})
    assert response.status_code == 404


def test_a_wait_without_timeout_is_rejected(api):
    document = _waiting_flow("http://127.0.0.1:9/x")
    del document["steps"]["approve"]["timeoutSeconds"]
    response = api.call("PUT", "/flows/no-timeout", json=document)
    assert response.status_code == 400
    assert any(d["path"] == "/steps/approve" for d in response.json()["error"]["details"])


def test_a_notify_url_that_refuses_fails_the_task_with_notify_failed(api, stub):
    flow_id = f"wait-{uuid.uuid4().hex[:8]}"
    url = stub.reply(f"/refuse/{flow_id}", (500, "no"))
    document = {**_waiting_flow(url), "id": flow_id}  # the notify fails outside the step: no catch applies
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"doc": "x"}}).json()["taskId"]

    state = api.wait_for(task_id)

    assert state["status"] == "FAILED"
    assert state["error"]["errorName"] == "NotifyFailed"
    assert "500" in state["error"]["errorMessage"] and state["error"]["stepId"] == "approve"


def test_the_sdk_resumes_by_callback_url_without_an_api_key(api, stub):
    from aiwf_sdk.client import Client

    task_id, path = _start(api, stub)
    notified = _notification(stub, path)
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    keyless = Client(api.url, api_key="")

    resumed = keyless.tasks.callback(notified["callbackUrl"], notified["resumeToken"], output={"by": "sdk"})

    assert resumed.task_id == task_id
    assert api.wait_for(task_id)["output"]["approval"] == {"by": "sdk"}
