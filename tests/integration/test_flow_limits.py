"""Flow runtime limits on the local stack: a runaway loop, an oversized template, a template error."""

from __future__ import annotations

import uuid
from typing import Any

FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def run(api, document: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
    """Register `document` under a fresh id, start a task of it and wait until it ends."""
    flow_id = f"{document['id']}-{uuid.uuid4().hex[:8]}"
    assert api.call("PUT", f"/flows/{flow_id}", json={**document, "id": flow_id}).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}}).json()["taskId"]
    state = api.wait_for(task_id, timeout=timeout)
    assert state["status"] in FINAL, state
    return state


def test_a_choice_loop_that_never_ends_fails_with_step_limit_exceeded(api):
    state = run(
        api,
        {
            "id": "limits-loop",
            "startAt": "count",
            "maxSteps": 20,
            "steps": {
                "count": {
                    "type": "transform",
                    "value": "{{ (n | default(0)) + 1 }}",
                    "resultPath": "n",
                    "next": "loop",
                },
                "loop": {
                    "type": "choice",
                    "choices": [{"path": "n", "lessThan": 0, "next": "done"}],
                    "default": "count",
                },
                "done": {"type": "succeed"},
            },
        },
    )

    assert state["status"] == "FAILED"
    error = state["error"]
    assert error["errorName"] == "StepLimitExceeded"
    assert error["stepId"] == "count"
    assert "20" in error["errorMessage"]
    assert error["errorDetails"] == {"maxSteps": 20, "stepsRun": 20}
    assert "stepsRun" not in state  # the counter is private to the backend


def test_a_twenty_megabyte_template_fails_with_the_size_error(api):
    state = run(
        api,
        {
            "id": "limits-big",
            "startAt": "big",
            "steps": {
                "big": {"type": "transform", "value": "{{ 'x' * 20000000 }}", "resultPath": "big", "next": "done"},
                "done": {"type": "succeed"},
            },
        },
    )

    assert state["status"] == "FAILED"
    assert state["error"]["errorName"] == "TemplateOutputTooLarge"
    assert state["error"]["stepId"] == "big"
    assert "1048576 bytes" in state["error"]["errorMessage"]
    assert state["output"] is None


def test_a_division_by_zero_is_a_template_error_in_plain_words(api):
    state = run(
        api,
        {
            "id": "limits-zero",
            "startAt": "divide",
            "steps": {
                "divide": {"type": "transform", "value": "{{ 1/0 }}", "resultPath": "q", "next": "done"},
                "done": {"type": "succeed"},
            },
        },
    )

    error = state["error"]
    assert state["status"] == "FAILED"
    assert error["errorName"] == "TemplateError"
    assert error["stepId"] == "divide"
    assert "divides by zero" in error["errorMessage"] and "{{ 1/0 }}" in error["errorMessage"]
    assert "ZeroDivisionError" not in error["errorMessage"]
