"""poll, http and task steps on the local stack, against a stub HTTP server on 127.0.0.1."""

from __future__ import annotations

import uuid


def _run(api, steps: dict, start: str, task_input: dict | None = None) -> tuple[str, dict]:
    flow_id = f"steps-{uuid.uuid4().hex[:8]}"
    document = {"id": flow_id, "startAt": start, "steps": steps}
    registered = api.call("PUT", f"/flows/{flow_id}", json=document)
    assert registered.status_code == 201, registered.text
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": task_input or {}})
    assert started.status_code == 201, started.text
    task_id = started.json()["taskId"]
    return task_id, api.wait_for(task_id, timeout=30)


def _poll_flow(url: str, max_attempts: int) -> dict:
    return {
        "report": {
            "type": "poll",
            "check": {"type": "http", "url": url},
            "until": {"path": "state", "equals": "done"},
            "intervalSeconds": 1,
            "maxAttempts": max_attempts,
            "resultPath": "report",
            "next": "done",
        },
        "done": {"type": "succeed", "outputPath": "report"},
    }


def test_poll_waits_in_the_state_machine_until_the_condition_holds(api, stub, stack):
    url = stub.reply(
        f"/job/{uuid.uuid4().hex}",
        (200, {"state": "running"}),
        (200, {"state": "running"}),
        (200, {"state": "done", "pages": 3}),
    )

    task_id, state = _run(api, _poll_flow(url, max_attempts=5), "report")

    assert state["status"] == "SUCCEEDED", state
    assert state["output"] == {"state": "done", "pages": 3}
    assert len(stub.received(url.removeprefix(stub.url))) == 3
    history = [item["status"] for item in api.call("GET", f"/tasks/{task_id}/history").json()["items"]]
    assert history.count("POLLING") >= 2  # every check is a recorded state change
    events = stack.client("stepfunctions").get_execution_history(
        executionArn=stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}",
        maxResults=1000,
    )["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered.count("PollWait") == 2 and entered.count("PollCheck") == 2


def test_poll_that_never_sees_the_condition_fails_with_poll_timeout(api, stub):
    url = stub.reply(f"/job/{uuid.uuid4().hex}", (200, {"state": "running"}))

    _, state = _run(api, _poll_flow(url, max_attempts=2), "report")

    assert state["status"] == "FAILED"
    assert state["error"]["errorName"] == "PollTimeout"
    assert state["error"]["stepId"] == "report"
    assert state["error"]["errorDetails"] == {"attempts": 2, "lastResult": {"state": "running"}}


def test_http_step_renders_templates_and_parses_json(api, stub):
    path = f"/api/{uuid.uuid4().hex}"
    url = stub.reply(path, (201, {"id": 42}))
    steps = {
        "create": {
            "type": "http",
            "method": "POST",
            "url": url + "?doc={{ input.doc }}",
            "headers": {"X-Task": "{{ taskId }}"},
            "body": {"doc": "{{ input.doc }}", "n": "{{ input.n }}"},
            "resultPath": "created",
            "next": "done",
        },
        "done": {"type": "succeed", "outputPath": "created"},
    }

    task_id, state = _run(api, steps, "create", {"doc": "a.pdf", "n": 2})

    assert state["status"] == "SUCCEEDED", state
    assert state["output"] == {"id": 42}
    request = stub.received(path)[0]
    assert request.method == "POST" and request.body == {"doc": "a.pdf", "n": 2}
    assert request.headers["X-Task"] == task_id


def test_http_non_2xx_is_an_http_error_with_the_status(api, stub):
    url = stub.reply(f"/api/{uuid.uuid4().hex}", (503, {"message": "busy"}))
    steps = {"call": {"type": "http", "url": url, "next": "done"}, "done": {"type": "succeed"}}

    _, state = _run(api, steps, "call")

    assert state["status"] == "FAILED"
    assert state["error"]["errorName"] == "HttpError"
    assert state["error"]["errorDetails"]["status"] == 503
    assert state["error"]["errorDetails"]["body"] == {"message": "busy"}
    assert state["error"]["retryable"] is True


def test_task_step_runs_a_registered_handler(api):
    steps = {
        "count": {"type": "task", "handler": "word_count", "input": {"text": "{{ input.text }}"}, "next": "slug"},
        "slug": {
            "type": "task",
            "handler": "slugify",
            "input": "{{ input.text }}",
            "resultPath": "slug",
            "next": "done",
        },
        "done": {"type": "succeed"},
    }

    _, state = _run(api, steps, "count", {"text": "Hello Big World"})

    assert state["status"] == "SUCCEEDED", state
    assert state["output"]["count"] == {"words": 3, "characters": 15}
    assert state["output"]["slug"] == "hello-big-world"


def test_task_step_with_an_unknown_handler_or_bad_input_fails_the_step(api):
    steps = {
        "count": {"type": "task", "handler": "word_count", "input": 7, "next": "done"},
        "done": {"type": "succeed"},
    }
    _, state = _run(api, steps, "count")
    assert (state["status"], state["error"]["errorName"]) == ("FAILED", "InvalidInput")

    steps = {"x": {"type": "task", "handler": "nope", "next": "done"}, "done": {"type": "succeed"}}
    _, state = _run(api, steps, "x")
    assert (state["status"], state["error"]["errorName"]) == ("FAILED", "UnknownHandler")


def _retrying_call(url: str, max_attempts: int) -> dict:
    return {
        "call": {
            "type": "http",
            "url": url,
            "retry": {"maxAttempts": max_attempts, "intervalSeconds": 1, "backoffRate": 1},
            "resultPath": "answer",
            "next": "done",
        },
        "done": {"type": "succeed", "outputPath": "answer"},
    }


def test_a_declared_retry_waits_in_the_state_machine_then_succeeds(api, stub, stack):
    path = f"/flaky/{uuid.uuid4().hex}"
    url = stub.reply(path, (503, "busy"), (502, "busy"), (200, {"ok": True}))

    task_id, state = _run(api, _retrying_call(url, max_attempts=3), "call")

    assert state["status"] == "SUCCEEDED", state
    assert state["output"] == {"ok": True}
    assert len(stub.received(path)) == 3
    events = stack.client("stepfunctions").get_execution_history(
        executionArn=stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}",
        maxResults=1000,
    )["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered.count("RetryWait") == 2


def test_retries_stop_after_max_attempts_and_not_for_permanent_errors(api, stub):
    path = f"/down/{uuid.uuid4().hex}"
    url = stub.reply(path, (503, "busy"))
    _, state = _run(api, _retrying_call(url, max_attempts=1), "call")
    assert (state["status"], state["error"]["errorName"]) == ("FAILED", "HttpError")
    assert len(stub.received(path)) == 2  # the attempt and one retry

    path = f"/missing/{uuid.uuid4().hex}"
    url = stub.reply(path, (404, "nope"))
    _, state = _run(api, _retrying_call(url, max_attempts=3), "call")
    assert state["error"]["errorDetails"]["status"] == 404
    assert len(stub.received(path)) == 1  # a 404 is not retryable


def test_a_one_megabyte_step_output_travels_by_claim_check(api, stack):
    steps = {
        "big": {"type": "transform", "value": {"blob": "{{ 'x' * input.n }}"}, "resultPath": "big", "next": "count"},
        "count": {"type": "transform", "value": "{{ big.blob | length }}", "resultPath": "size", "next": "done"},
        "done": {"type": "succeed", "outputPath": "big"},
    }

    task_id, state = _run(api, steps, "big", {"n": 1_000_000})

    assert state["status"] == "SUCCEEDED", state.get("error")
    assert len(state["output"]["blob"]) == 1_000_000
    history = stack.client("stepfunctions").get_execution_history(
        executionArn=stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}",
        maxResults=1000,
    )["events"]
    largest = max(len(str(event)) for event in history)
    assert largest < 10_000  # the state machine carried ids, never the payload
