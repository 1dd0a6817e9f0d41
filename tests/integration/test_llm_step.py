"""The llm step on the local stack with the deterministic local model (model ids under local/)."""

from __future__ import annotations

import uuid


def test_llm_step_replies_deterministically_and_drives_a_choice(api):
    flow_id = f"llm-{uuid.uuid4().hex[:8]}"
    document = {
        "id": flow_id,
        "startAt": "classify",
        "steps": {
            "classify": {
                "type": "llm",
                "model": "local/echo",
                "system": "You label documents.",
                "prompt": "Classify: {{ input.text }} reply: {{ input.expected }}",
                "resultPath": "label",
                "retry": {"maxAttempts": 2, "intervalSeconds": 1},
                "next": "route",
            },
            "route": {
                "type": "choice",
                "choices": [{"path": "label", "equals": "urgent", "next": "digest"}],
                "default": "done",
            },
            "digest": {
                "type": "llm",
                "model": "local/echo",
                "prompt": "{{ input.text }}",
                "resultPath": "digest",
                "next": "done",
            },
            "done": {"type": "succeed"},
        },
    }
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201

    outputs = []
    for _ in range(2):
        task_id = api.call(
            "POST", "/tasks", json={"flowId": flow_id, "input": {"text": "server down", "expected": "urgent"}}
        ).json()["taskId"]
        state = api.wait_for(task_id)
        assert state["status"] == "SUCCEEDED", state
        outputs.append(state["output"])

    assert outputs[0]["label"] == "urgent"
    assert outputs[0]["digest"].startswith("local-") and outputs[0]["digest"] == outputs[1]["digest"]


def test_the_local_stack_answers_cloud_model_ids_with_the_local_model(api):
    """Flows written for Bedrock run unchanged on the local stack: no account, deterministic answers."""
    flow_id = f"bedrock-{uuid.uuid4().hex[:8]}"
    flow = {
        "id": flow_id,
        "startAt": "ask",
        "steps": {
            "ask": {
                "type": "llm",
                "model": "anthropic.claude-3-haiku-20240307-v1:0",
                "prompt": "Classify {{ input.text }}. reply: urgent",
                "resultPath": "label",
                "next": "done",
            },
            "done": {"type": "succeed", "outputPath": "label"},
        },
    }
    assert api.call("PUT", f"/flows/{flow_id}", json=flow).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"text": "x"}}).json()["taskId"]

    state = api.wait_for(task_id)

    assert state["status"] == "SUCCEEDED", state["error"]
    assert state["output"] == "urgent"
