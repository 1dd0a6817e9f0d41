"""The task API end to end on the local stack: real program, real state machine, real Lambda package."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HELLO = yaml.safe_load((ROOT / "flows" / "hello.yaml").read_text())
FINAL_FIELDS = {
    "taskId",
    "flowId",
    "flowVersion",
    "status",
    "seq",
    "currentStep",
    "branchId",
    "waitingFor",
    "output",
    "error",
    "startedAt",
    "updatedAt",
    "redriveCount",
    "tenantId",
}


def _flow_id(prefix: str = "hello") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _register(api, flow_id: str, document: dict | None = None) -> dict:
    response = api.call("PUT", f"/flows/{flow_id}", json={**(document or HELLO), "id": flow_id})
    assert response.status_code == 201, response.text
    return response.json()


def test_stack_outputs_follow_the_contract(stack):
    assert set(stack.outputs) >= {"taskApiUrl", "apiKey", "stateMachineArn", "stage"}
    assert stack.outputs["stage"] == "dev"
    assert stack.outputs["taskApiUrl"].startswith("http://127.0.0.1:")
    assert not stack.outputs["taskApiUrl"].endswith("/")


def test_a_task_runs_to_success_with_history_in_seq_order(api):
    flow_id = _flow_id()
    assert _register(api, flow_id) == {"flowId": flow_id, "version": 1}

    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"name": "Ada"}})
    assert started.status_code == 201, started.text
    task_id = started.json()["taskId"]

    state = api.wait_for(task_id)
    assert set(state) == FINAL_FIELDS
    assert state["status"] == "SUCCEEDED"
    assert state["output"] == {"greeting": "Hello, Ada!", "name": "Ada"}
    assert state["flowVersion"] == 1
    assert state["tenantId"] == "default"  # the API key acts for tenant default

    history = api.call("GET", f"/tasks/{task_id}/history").json()["items"]
    assert [item["seq"] for item in history] == list(range(1, state["seq"] + 1))
    assert [item["status"] for item in history][:2] == ["PENDING", "RUNNING"]
    assert history[-1] == state
    assert [item["currentStep"] for item in history[1:]] == ["prepare", "check", "done", "done"]

    listed = api.call("GET", f"/tasks?flowId={flow_id}").json()
    assert [item["taskId"] for item in listed["items"]] == [task_id]


def test_a_fail_step_ends_the_task_with_the_normalized_error(api):
    flow_id = _flow_id()
    _register(api, flow_id)
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"name": "nobody"}}).json()["taskId"]

    state = api.wait_for(task_id)

    assert state["status"] == "FAILED"
    assert state["error"] == {
        "errorName": "NoName",
        "errorMessage": "Cannot greet nobody",
        "errorDetails": None,
        "retryable": False,
        "stepId": "reject",
        "branchId": None,
    }


def test_a_template_error_fails_the_step_not_the_service(api):
    flow_id = _flow_id()
    _register(api, flow_id)
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}}).json()["taskId"]

    state = api.wait_for(task_id)

    assert state["status"] == "FAILED"
    assert state["error"]["errorName"] == "TemplateError"
    assert state["error"]["stepId"] == "prepare"


def test_same_name_gives_the_same_task_and_one_execution(api, stack):
    flow_id = _flow_id()
    _register(api, flow_id)
    body = {"flowId": flow_id, "input": {"name": "Grace"}, "name": f"order-{uuid.uuid4().hex}"}

    first = api.call("POST", "/tasks", json=body)
    second = api.call("POST", "/tasks", json=body)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["taskId"] == second.json()["taskId"]
    executions = stack.client("stepfunctions").list_executions(stateMachineArn=stack.outputs["stateMachineArn"])
    assert [e["name"] for e in executions["executions"]].count(first.json()["taskId"]) == 1
    assert api.wait_for(first.json()["taskId"])["status"] == "SUCCEEDED"


def test_a_running_task_keeps_its_flow_version(api):
    flow_id = _flow_id()
    _register(api, flow_id)
    changed = {**HELLO, "steps": {**HELLO["steps"], "done": {"type": "succeed", "outputPath": "doc.greeting"}}}
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"name": "Lin"}}).json()["taskId"]
    assert _register(api, flow_id, changed)["version"] == 2

    state = api.wait_for(task_id)
    assert state["flowVersion"] == 1
    assert state["output"] == {"greeting": "Hello, Lin!", "name": "Lin"}

    newer = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"name": "Lin"}}).json()["taskId"]
    assert api.wait_for(newer)["output"] == "Hello, Lin!"


def test_flows_are_versioned_and_readable(api):
    flow_id = _flow_id()
    _register(api, flow_id)
    again = api.call("PUT", f"/flows/{flow_id}", json={**HELLO, "id": flow_id})
    assert again.status_code == 200 and again.json()["version"] == 1  # same document: no new version

    latest = api.call("GET", f"/flows/{flow_id}")
    assert latest.status_code == 200
    assert latest.json()["version"] == 1 and latest.json()["steps"] == HELLO["steps"]
    assert api.call("GET", f"/flows/{flow_id}?version=1").json()["id"] == flow_id
    assert api.call("GET", f"/flows/{flow_id}?version=7").status_code == 404


def test_list_is_newest_first_and_paginates(api):
    flow_id = _flow_id("list")
    _register(api, flow_id)
    ids = [
        api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"name": str(i)}}).json()["taskId"]
        for i in range(5)
    ]
    for task_id in ids:
        api.wait_for(task_id)

    seen, token = [], None
    while True:
        page = api.call(
            "GET", "/tasks", params={"flowId": flow_id, "limit": 2, **({"nextToken": token} if token else {})}
        )
        assert page.status_code == 200
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [item["taskId"] for item in body["items"]]
        token = body["nextToken"]
        if not token:
            break
    assert seen == list(reversed(ids))

    succeeded = api.call("GET", "/tasks", params={"flowId": flow_id, "status": "SUCCEEDED", "limit": 100}).json()
    assert len(succeeded["items"]) == 5
    by_status = api.call("GET", "/tasks", params={"status": "SUCCEEDED", "limit": 3}).json()
    assert len(by_status["items"]) == 3 and all(item["status"] == "SUCCEEDED" for item in by_status["items"])


def _assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    if code:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/tasks", {"data": "{not json"}, 400, "MALFORMED_JSON"),
        ("POST", "/tasks", {"data": ""}, 400, "EMPTY_BODY"),
        ("POST", "/tasks", {"json": {"input": {}}}, 400, "INVALID_REQUEST"),
        ("POST", "/tasks", {"json": {"flowId": "UPPER case"}}, 400, "INVALID_REQUEST"),
        ("POST", "/tasks", {"json": {"flowId": "x", "surprise": 1}}, 400, "INVALID_REQUEST"),
        ("POST", "/tasks", {"json": ["a", "list"]}, 400, "INVALID_REQUEST"),
        ("POST", "/tasks", {"json": {"flowId": "never-registered"}}, 404, "FLOW_NOT_FOUND"),
        ("GET", "/tasks/does-not-exist", {}, 404, "TASK_NOT_FOUND"),
        ("GET", "/tasks/does-not-exist/history", {}, 404, "TASK_NOT_FOUND"),
        ("GET", "/tasks?status=NAPPING", {}, 400, "INVALID_PARAMETER"),
        ("GET", "/tasks?limit=0", {}, 400, "INVALID_PARAMETER"),
        ("GET", "/tasks?limit=ten", {}, 400, "INVALID_PARAMETER"),
        ("GET", "/tasks?nextToken=%25%25garbage", {}, 400, "INVALID_NEXT_TOKEN"),
        ("GET", "/flows/never-registered", {}, 404, "FLOW_NOT_FOUND"),
        ("GET", "/flows/hello?version=abc", {}, 400, "INVALID_PARAMETER"),
        ("PUT", "/flows/bad", {"data": "{"}, 400, "MALFORMED_JSON"),
        ("PUT", "/flows/bad", {"json": {"id": "other", "startAt": "a", "steps": {}}}, 400, "FLOW_ID_MISMATCH"),
    ],
)
def test_bad_input_gets_a_4xx_with_the_error_body(api, method, path, kwargs, status, code):
    _assert_error(api.call(method, path, **kwargs), status, code)


def test_an_invalid_flow_lists_every_error(api):
    document = {"startAt": "missing", "steps": {"a": {"type": "transform"}, "b": {"type": "warp"}}}

    error = _assert_error(api.call("PUT", "/flows/broken", json=document), 400, "INVALID_FLOW")

    paths = {detail["path"] for detail in error["details"]}
    assert {"/steps/a", "/steps/b/type"} <= paths
    assert api.call("GET", "/flows/broken").status_code == 404  # nothing was stored


def test_requests_without_the_api_key_are_refused(api):
    for headers in ({}, {"x-api-key": "wrong"}):
        response = api.session.get(f"{api.url}/tasks", headers=headers, timeout=10)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"  # API Gateway's answer, in the error envelope


def test_the_shipped_flows_are_registered_when_the_stack_deploys(api):
    for path in sorted((ROOT / "flows").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        response = api.call("GET", f"/flows/{document['id']}?version=1")
        assert response.status_code == 200, f"{path.name} was not registered at deploy time"
        assert response.json()["steps"] == document["steps"]
