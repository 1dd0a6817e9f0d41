"""Untrusted flows stay bounded on the local stack: a template that would run for hours, an HTTP
answer too large to read, and a pattern that cannot be matched in linear time."""

from __future__ import annotations

import uuid

from tests.integration.test_flow_limits import run


def test_a_template_past_its_time_limit_fails_the_task_with_template_timeout(api):
    state = run(
        api,
        {
            "id": "bounded-slow",
            "startAt": "spin",
            "steps": {
                "spin": {
                    "type": "transform",
                    "value": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                    "resultPath": "spun",
                    "next": "done",
                },
                "done": {"type": "succeed"},
            },
        },
    )

    assert state["status"] == "FAILED"
    error = state["error"]
    assert (error["errorName"], error["stepId"]) == ("TemplateTimeout", "spin")
    assert error["errorDetails"]["limitMs"] == 1000 and "1000 ms" in error["errorMessage"]
    assert error["retryable"] is False  # failed once, not retried until a Lambda timeout


def test_an_http_answer_past_the_limit_fails_the_task_with_response_too_large(api, stub):
    url = stub.reply("/bounded/huge", (200, "x" * (1_048_576 + 1)))
    state = run(
        api,
        {
            "id": "bounded-huge",
            "startAt": "fetch",
            "steps": {
                "fetch": {"type": "http", "url": url, "next": "done"},
                "done": {"type": "succeed"},
            },
        },
    )

    assert state["status"] == "FAILED"
    error = state["error"]
    assert (error["errorName"], error["stepId"]) == ("ResponseTooLarge", "fetch")
    assert error["errorDetails"]["limitBytes"] == 1_048_576
    assert len(stub.received("/bounded/huge")) == 1, "not retryable"


def test_a_pattern_outside_re2_is_refused_at_registration(api):
    flow_id = f"bounded-pattern-{uuid.uuid4().hex[:8]}"
    document = {
        "id": flow_id,
        "startAt": "route",
        "steps": {
            "route": {
                "type": "choice",
                "choices": [{"path": "input.word", "matches": r"^(a)\1$", "next": "done"}],
                "default": "done",
            },
            "done": {"type": "succeed"},
        },
    }
    answer = api.call("PUT", f"/flows/{flow_id}", json=document)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "INVALID_FLOW"
    assert error["details"][0]["path"] == "/steps/route/choices/0/matches"
    assert "'route'" in error["details"][0]["message"]

    document["steps"]["route"]["choices"][0]["matches"] = "^(a+)+$"
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"word": "a" * 40 + "!"}}).json()["taskId"]
    assert api.wait_for(task_id)["status"] == "SUCCEEDED"
