"""History quota: with a lowered threshold, a task continues in fresh executions and finishes."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def low_threshold(stack):
    """Lower CONTINUE_AFTER_EVENTS on the running process function (its warm workers are retired)."""
    lam = stack.client("lambda")
    name = next(
        f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].endswith("process-steps")
    )
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=name,
        Environment={"Variables": {**variables, "CONTINUE_AFTER_EVENTS": "12", "CONTINUE_CHECK_EVERY_ROUNDS": "1"}},
    )
    yield
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})


def test_a_task_continues_in_fresh_executions_without_losing_state(api, stub, stack, low_threshold):
    flow_id = f"cont-{uuid.uuid4().hex[:8]}"
    url = stub.reply(f"/job/{flow_id}", *([(200, {"state": "running"})] * 4), (200, {"state": "done", "n": 5}))
    document = {
        "id": flow_id,
        "startAt": "a",
        "steps": {
            "a": {"type": "transform", "value": "{{ input.x }}", "resultPath": "a", "next": "poll"},
            "poll": {
                "type": "poll",
                "check": {"type": "http", "url": url},
                "until": {"path": "state", "equals": "done"},
                "intervalSeconds": 0,
                "maxAttempts": 10,
                "resultPath": "job",
                "next": "b",
            },
            "b": {"type": "transform", "value": "{{ a }}-{{ job.n }}", "resultPath": "b", "next": "done"},
            "done": {"type": "succeed", "outputPath": "b"},
        },
    }
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"x": "kept"}}).json()["taskId"]

    state = api.wait_for(task_id, timeout=60)

    assert state["status"] == "SUCCEEDED", state
    assert state["output"] == "kept-5"
    executions = stack.client("stepfunctions").list_executions(stateMachineArn=stack.outputs["stateMachineArn"])
    names = sorted(e["name"] for e in executions["executions"] if e["name"].startswith(task_id))
    assert len(names) >= 2 and f"{task_id}-c2" in names
    statuses = {e["name"]: e["status"] for e in executions["executions"] if e["name"].startswith(task_id)}
    assert statuses[task_id] == "SUCCEEDED"  # ended by Continued, not failed
