"""parallel steps on the local stack: an inline Map whose iterations run the step loop per branch."""

from __future__ import annotations

import uuid


def _run(api, document: dict, task_input: dict | None = None, wait: bool = True) -> tuple[str, dict]:
    flow_id = f"par-{uuid.uuid4().hex[:8]}"
    registered = api.call("PUT", f"/flows/{flow_id}", json={**document, "id": flow_id})
    assert registered.status_code == 201, registered.text
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": task_input or {}})
    assert started.status_code == 201, started.text
    task_id = started.json()["taskId"]
    return task_id, (api.wait_for(task_id, timeout=30) if wait else started.json())


def _mixed(on_branch_error: str) -> dict:
    return {
        "startAt": "fanout",
        "steps": {
            "fanout": {
                "type": "parallel",
                "maxConcurrency": 2,
                "onBranchError": on_branch_error,
                "branches": [
                    {
                        "id": "a",
                        "startAt": "shout",
                        "steps": {
                            "shout": {"type": "transform", "value": "{{ input.word | upper }}", "next": "ok"},
                            "ok": {"type": "succeed", "outputPath": "shout"},
                        },
                    },
                    {
                        "id": "b",
                        "startAt": "boom",
                        "steps": {"boom": {"type": "fail", "error": "BranchBroke", "cause": "b for {{ input.word }}"}},
                    },
                    {"id": "c", "startAt": "ok", "steps": {"ok": {"type": "succeed", "outputPath": "branchId"}}},
                ],
                "resultPath": "branches",
                "next": "done",
            },
            "done": {"type": "succeed", "outputPath": "branches"},
        },
    }


def test_continue_collects_outputs_and_errors_in_branch_order(api):
    _, state = _run(api, _mixed("continue"), {"word": "hi"})

    assert state["status"] == "SUCCEEDED", state
    a, b, c = state["output"]
    assert a == {"branchId": "a", "output": "HI"}
    assert c == {"branchId": "c", "output": "c"}
    assert b["branchId"] == "b"
    assert b["error"] == {
        "errorName": "BranchBroke",
        "errorMessage": "b for hi",
        "errorDetails": None,
        "retryable": False,
        "stepId": "boom",
        "branchId": "b",
    }


def test_fail_fails_the_step_with_the_first_branch_error(api):
    task_id, state = _run(api, _mixed("fail"), {"word": "hi"})

    assert state["status"] == "FAILED"
    assert state["error"]["errorName"] == "BranchBroke"
    assert state["error"]["branchId"] == "b" and state["error"]["stepId"] == "fanout"
    listed = api.call("GET", "/tasks", params={"flowId": state["flowId"]}).json()["items"]
    assert [item["taskId"] for item in listed] == [task_id]  # branch records are not tasks


def test_for_each_runs_one_branch_per_item_with_its_item(api):
    document = {
        "startAt": "each",
        "steps": {
            "each": {
                "type": "parallel",
                "maxConcurrency": 3,
                "forEach": {
                    "items": "{{ input.docs }}",
                    "branch": {
                        "startAt": "label",
                        "steps": {
                            "label": {"type": "transform", "value": "{{ branchId }}:{{ item.name }}", "next": "ok"},
                            "ok": {"type": "succeed", "outputPath": "label"},
                        },
                    },
                },
                "resultPath": "labels",
                "next": "done",
            },
            "done": {"type": "succeed", "outputPath": "labels"},
        },
    }
    docs = [{"name": f"d{i}"} for i in range(5)]

    _, state = _run(api, document, {"docs": docs})

    assert state["status"] == "SUCCEEDED", state
    assert state["output"] == [{"branchId": str(i), "output": f"{i}:d{i}"} for i in range(5)]


def test_a_branch_can_wait_for_an_event_and_poll(api, stub):
    job = stub.reply(f"/job/{uuid.uuid4().hex}", (200, {"state": "running"}), (200, {"state": "done"}))
    notify_path = f"/notify/{uuid.uuid4().hex}"
    document = {
        "startAt": "fanout",
        "steps": {
            "fanout": {
                "type": "parallel",
                "branches": [
                    {
                        "id": "approval",
                        "startAt": "ask",
                        "steps": {
                            "ask": {
                                "type": "wait_for_event",
                                "timeoutSeconds": 30,
                                "notify": {"url": stub.url + notify_path},
                                "resultPath": "answer",
                                "next": "ok",
                            },
                            "ok": {"type": "succeed", "outputPath": "answer"},
                        },
                    },
                    {
                        "id": "job",
                        "startAt": "check",
                        "steps": {
                            "check": {
                                "type": "poll",
                                "check": {"type": "http", "url": job},
                                "until": {"path": "state", "equals": "done"},
                                "intervalSeconds": 1,
                                "maxAttempts": 5,
                                "next": "ok",
                            },
                            "ok": {"type": "succeed", "outputPath": "check"},
                        },
                    },
                ],
                "next": "done",
            },
            "done": {"type": "succeed", "outputPath": "fanout"},
        },
    }
    task_id, _ = _run(api, document, wait=False)

    notified = stub.wait_for(notify_path)[0].body
    branch_record = notified["taskId"]
    assert branch_record != task_id and branch_record.startswith(task_id)
    waiting = api.wait_for(branch_record, lambda s: s["status"] == "WAITING")
    assert (waiting["taskId"], waiting["branchId"]) == (task_id, "approval")
    resumed = api.call(
        "PUT",
        f"/tasks/{branch_record}",
        json={"resumeToken": notified["resumeToken"], "status": "SUCCEEDED", "output": "yes"},
    )
    assert resumed.status_code == 202, resumed.text

    state = api.wait_for(task_id, timeout=30)
    assert state["status"] == "SUCCEEDED", state
    assert state["output"] == [
        {"branchId": "approval", "output": "yes"},
        {"branchId": "job", "output": {"state": "done"}},
    ]


def test_nested_parallel_is_rejected(api):
    inner = {
        "type": "parallel",
        "branches": [{"id": "x", "startAt": "s", "steps": {"s": {"type": "succeed"}}}],
        "next": "s2",
    }
    document = {
        "startAt": "outer",
        "steps": {
            "outer": {
                "type": "parallel",
                "branches": [{"id": "a", "startAt": "p", "steps": {"p": inner, "s2": {"type": "succeed"}}}],
                "next": "done",
            },
            "done": {"type": "succeed"},
        },
    }
    response = api.call("PUT", "/flows/nested-par", json=document)
    assert response.status_code == 400
    assert any("nested" in d["message"] for d in response.json()["error"]["details"])
