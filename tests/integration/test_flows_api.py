"""GET /flows and DELETE /flows/{flowId} on the local stack, over HTTP: listing, retirement, revival,
and the answers that leave no silent surprise (idempotency conflicts, API Gateway's own errors)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_callbacks import _token, _waiting_flow

HELLO = {
    "startAt": "hi",
    "steps": {"hi": {"type": "transform", "value": "{{ input.name }}", "next": "done"}, "done": {"type": "succeed"}},
}


def _flow_id(prefix: str = "flows") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _register(api, flow_id: str, document: dict | None = None, status: int = 201) -> dict:
    response = api.call("PUT", f"/flows/{flow_id}", json={**(document or HELLO), "id": flow_id})
    assert response.status_code == status, response.text
    return response.json()


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    return body["error"]


def _all_flows(api, limit: int) -> list[list[dict]]:
    pages, token = [], None
    while True:
        params = {"limit": limit, **({"nextToken": token} if token else {})}
        response = api.call("GET", "/flows", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "nextToken"}
        pages.append(body["items"])
        token = body["nextToken"]
        if token is None:
            return pages


def test_flows_are_listed_once_each_at_their_latest_version_in_pages(api):
    prefix = _flow_id("list")
    mine = [f"{prefix}-{n}" for n in range(3)]
    for flow_id in mine:
        _register(api, flow_id)
    _register(api, mine[1], {**HELLO, "description": "v2"})

    pages = _all_flows(api, limit=2)
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 2
    items = [item for page in pages for item in page]
    ids = [item["flowId"] for item in items]
    assert ids == sorted(ids) and len(ids) == len(set(ids)), "each flow once, by flowId"
    listed = {item["flowId"]: item for item in items if item["flowId"].startswith(prefix)}
    assert sorted(listed) == mine
    assert {flow_id: item["version"] for flow_id, item in listed.items()} == {mine[0]: 1, mine[1]: 2, mine[2]: 1}
    for item in listed.values():
        assert set(item) == {"flowId", "version", "retired", "updatedAt"} and item["retired"] is False
    assert "hello" in ids, "flows registered at deploy time are listed too"


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "nextToken=%25%25garbage"])
def test_a_bad_list_query_is_a_400(api, query):
    response = api.call("GET", f"/flows?{query}")
    _error(response, 400, "INVALID_NEXT_TOKEN" if "nextToken" in query else "INVALID_PARAMETER")


def test_a_retired_flow_refuses_new_tasks_until_a_put_revives_it(api):
    flow_id = _flow_id("retire")
    _register(api, flow_id)

    retired = api.call("DELETE", f"/flows/{flow_id}")
    assert (retired.status_code, retired.json()) == (200, {"flowId": flow_id, "version": 1, "retired": True})
    assert api.call("DELETE", f"/flows/{flow_id}").status_code == 200  # again: still retired
    _error(api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"name": "Ada"}}), 409, "FLOW_RETIRED")
    listed = next(i for page in _all_flows(api, 100) for i in page if i["flowId"] == flow_id)
    assert listed["retired"] is True and listed["version"] == 1
    assert api.call("GET", f"/flows/{flow_id}").status_code == 200, "a retired flow can still be read"

    assert _register(api, flow_id, status=200) == {"flowId": flow_id, "version": 1}  # same document: no new version
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"name": "Ada"}})
    assert started.status_code == 201, started.text
    assert api.wait_for(started.json()["taskId"])["status"] == "SUCCEEDED"

    api.call("DELETE", f"/flows/{flow_id}")
    assert _register(api, flow_id, {**HELLO, "description": "changed"}) == {"flowId": flow_id, "version": 2}
    listed = next(i for page in _all_flows(api, 100) for i in page if i["flowId"] == flow_id)
    assert (listed["version"], listed["retired"]) == (2, False)


def test_retiring_an_unknown_flow_is_a_404(api):
    _error(api.call("DELETE", f"/flows/{_flow_id('never')}"), 404, "FLOW_NOT_FOUND")
    _error(api.call("DELETE", "/flows/NOT%20VALID"), 400, "INVALID_FLOW_ID")


def test_a_running_task_of_a_retired_flow_finishes_on_its_pinned_version(api, stub):
    flow_id = _flow_id("pinned")
    path = f"/notify/{flow_id}"
    _register(api, flow_id, _waiting_flow(stub.url + path))
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"doc": "contract.pdf"}})
    assert started.status_code == 201, started.text
    task_id = started.json()["taskId"]
    token = _token(stub, path)
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    assert api.call("DELETE", f"/flows/{flow_id}").status_code == 200
    resumed = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED", "output": {}})
    assert resumed.status_code == 202, resumed.text
    state = api.wait_for(task_id)
    assert (state["status"], state["flowVersion"]) == ("SUCCEEDED", 1), state


def test_one_name_for_another_flow_or_input_is_an_idempotency_conflict(api):
    flow_id, other = _flow_id("idem"), _flow_id("idem")
    _register(api, flow_id)
    _register(api, other)
    name = f"order-{uuid.uuid4().hex}"
    first = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"name": "Lin", "n": [1, 2]}, "name": name})
    assert first.status_code == 201, first.text
    again = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"n": [1, 2], "name": "Lin"}, "name": name})
    assert (again.status_code, again.json()["taskId"]) == (200, first.json()["taskId"])

    for body in (
        {"flowId": other, "input": {"name": "Lin", "n": [1, 2]}, "name": name},
        {"flowId": flow_id, "input": {"name": "Grace", "n": [1, 2]}, "name": name},
        {"flowId": flow_id, "name": name},
    ):
        _error(api.call("POST", "/tasks", json=body), 409, "IDEMPOTENCY_CONFLICT")


@pytest.mark.parametrize("value", [[1, 2], "text", 3, None, True])
def test_an_input_that_is_not_an_object_is_a_400(api, value):
    error = _error(api.call("POST", "/tasks", json={"flowId": "hello", "input": value}), 400, "INVALID_REQUEST")
    assert any(detail["path"] == "/input" for detail in error["details"]), error


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}])
def test_api_gateway_refuses_a_missing_or_wrong_key_with_the_error_envelope(api, headers):
    for method, path in (("GET", "/flows"), ("DELETE", "/flows/never-registered"), ("GET", "/tasks")):
        response = api.session.request(method, f"{api.url}{path}", headers=headers, timeout=10)
        _error(response, 403, "FORBIDDEN")


@pytest.mark.parametrize(("method", "path"), [("GET", "/nothing"), ("PATCH", "/tasks"), ("DELETE", "/tasks/x/history")])
def test_api_gateway_answers_an_unknown_path_or_method_with_a_404_envelope(api, method, path):
    _error(api.call(method, path), 404, "NOT_FOUND")
