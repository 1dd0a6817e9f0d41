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
