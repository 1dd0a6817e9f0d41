"""The durable engine on the local stack: flows with `engine: durable` run as Lambda durable
executions (the SDK's testing server emulates the service; the function runs in the warm workers).

What is specific to it: the execution it starts, callbacks for waits (resume, failure, timeout,
heartbeat), polls, a parallel step whose failing branch fails the task, cancel (StopDurableExecution),
redrive (a new execution from the failed step), and a replay after the worker is killed mid-step
(the steps that were checkpointed are not run again). The example flows run on both engines in
test_example_flows.py.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from typing import Any

import pytest
import requests

DURABLE_HANDLER = "aiwf.handlers.durable.handler"
FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _run(api, document: dict[str, Any], task_input: dict | None = None) -> str:
    flow_id = f"durable-{uuid.uuid4().hex[:8]}"
    registered = api.call("PUT", f"/flows/{flow_id}", json={**document, "id": flow_id, "engine": "durable"})
    assert registered.status_code == 201, registered.text
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": task_input or {}})
    assert started.status_code == 201, started.text
    return started.json()["taskId"]


def _final(api, task_id: str, timeout: float = 30) -> dict:
    return api.wait_for(task_id, lambda s: s["status"] in FINAL, timeout=timeout)


def _execution_arn(stack, task_id: str) -> str:
    tables = stack.client("dynamodb").list_tables()["TableNames"]
    table = next(name for name in tables if name.endswith("-tasks"))
    item = stack.client("dynamodb").get_item(TableName=table, Key={"taskId": {"S": task_id}})["Item"]
    return item["executionArn"]["S"]


def _execution(stack, task_id: str, ended: bool = False) -> dict:
    """The task's durable execution; with `ended`, once it is no longer RUNNING (it ends just after
    the task record, which the engine commits first)."""
    lam = stack.client("lambda")
    deadline = time.monotonic() + 10
    while True:
        execution = lam.get_durable_execution(DurableExecutionArn=_execution_arn(stack, task_id))
        if not ended or execution["Status"] != "RUNNING" or time.monotonic() > deadline:
            return execution
        time.sleep(0.05)


def _steps_in_history(api, task_id: str) -> list[str | None]:
    items = api.call("GET", f"/tasks/{task_id}/history").json()["items"]
    assert [item["seq"] for item in items] == list(range(1, len(items) + 1))  # contiguous, from 1
    return [item["currentStep"] for item in items]


def _wait_flow(stub, path: str, timeout: int = 60, heartbeat: int | None = None) -> dict:
    approve: dict[str, Any] = {
        "type": "wait_for_event",
        "timeoutSeconds": timeout,
        "notify": {"url": stub.url + path},
        "resultPath": "approval",
        "next": "done",
        "catch": "rejected",
    }
    if heartbeat:
        approve["heartbeatSeconds"] = heartbeat
    return {
        "startAt": "approve",
        "steps": {
            "approve": approve,
            "done": {"type": "succeed"},
            "rejected": {"type": "succeed", "outputPath": "error"},
        },
    }


def _token(stub, path: str) -> str:
    return stub.wait_for(path)[0].body["resumeToken"]


def test_a_durable_flow_runs_as_a_durable_execution_of_the_published_version(api, stack):
    task_id = _run(api, {"startAt": "done", "steps": {"done": {"type": "succeed"}}}, {"n": 1})

    state = _final(api, task_id)

    assert state["status"] == "SUCCEEDED", state
    arn = _execution_arn(stack, task_id)
    assert arn.startswith(stack.outputs["durableFunctionArn"] + "/durable-execution/" + task_id + "/")
    assert _execution(stack, task_id, ended=True)["Status"] == "SUCCEEDED"


def test_a_wait_is_a_callback_that_resume_completes(api, stub, stack):
    path = f"/approve/{uuid.uuid4().hex[:8]}"
    task_id = _run(api, _wait_flow(stub, path))
    token = _token(stub, path)
    waiting = api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    assert waiting["currentStep"] == "approve"
    assert _execution(stack, task_id)["Status"] == "RUNNING"

    wrong = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token + "x", "status": "SUCCEEDED"})
    assert wrong.status_code == 403
    beat = api.call("POST", f"/tasks/{task_id}/heartbeat", json={"resumeToken": token})
    assert beat.status_code == 200, beat.text
    resumed = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED", "output": "ok"})
    assert resumed.status_code == 202, resumed.text

    state = _final(api, task_id)
    assert state["status"] == "SUCCEEDED" and state["output"]["approval"] == "ok", state
    again = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert again.status_code == 409


def test_a_wait_resumes_by_its_callback_url_with_the_token_alone_which_is_not_the_callback_id(api, stub, stack):
    path = f"/approve/{uuid.uuid4().hex[:8]}"
    task_id = _run(api, _wait_flow(stub, path))
    notified = stub.wait_for(path)[0].body
    token, url = notified["resumeToken"], notified["callbackUrl"]
    assert url == f"{api.url}/callbacks/{notified['waitId']}"
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    functions = stack.client("lambda").list_functions()["Functions"]
    table = next(f for f in functions if f["Handler"] == "aiwf.handlers.task_api.handler")["Environment"]["Variables"]
    item = stack.client("dynamodb").get_item(TableName=table["TASKS_TABLE"], Key={"taskId": {"S": task_id}})["Item"]
    callback_id = item["engineToken"]["S"]  # the durable callback id stays on the record, for the backend
    assert callback_id and token != callback_id and token not in json.dumps(item)

    wrong = requests.post(url, json={"resumeToken": callback_id, "status": "SUCCEEDED"}, timeout=30)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "WRONG_TOKEN"
    beat = requests.post(f"{url}/heartbeat", json={"resumeToken": token}, timeout=30)
    assert beat.status_code == 200, beat.text
    resumed = requests.post(url, json={"resumeToken": token, "status": "SUCCEEDED", "output": "ok"}, timeout=30)
    assert resumed.status_code == 202, resumed.text
    state = _final(api, task_id)
    assert state["status"] == "SUCCEEDED" and state["output"]["approval"] == "ok", state
    again = requests.post(url, json={"resumeToken": token, "status": "SUCCEEDED"}, timeout=30)
    assert again.status_code == 409 and again.json()["error"]["code"] == "NOT_WAITING"


def test_a_resume_with_failure_fails_the_wait_step_so_its_catch_applies(api, stub):
    path = f"/reject/{uuid.uuid4().hex[:8]}"
    task_id = _run(api, _wait_flow(stub, path))
    token = _token(stub, path)
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    failed = {"errorName": "Rejected", "errorMessage": "not today"}
    answer = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "FAILED", "error": failed})
    assert answer.status_code == 202, answer.text

    state = _final(api, task_id)
    assert state["status"] == "SUCCEEDED", state
    assert state["output"]["errorName"] == "Rejected" and state["output"]["stepId"] == "approve"


@pytest.mark.parametrize(
    ("timeout", "heartbeat", "name"), [(1, None, "States.Timeout"), (60, 1, "States.HeartbeatTimeout")]
)
def test_a_wait_that_times_out_fails_the_task_as_on_step_functions(api, stub, timeout, heartbeat, name):
    path = f"/late/{uuid.uuid4().hex[:8]}"
    document = _wait_flow(stub, path, timeout=timeout, heartbeat=heartbeat)
    del document["steps"]["approve"]["catch"], document["steps"]["rejected"]  # a timeout is no step error
    task_id = _run(api, document)
    token = _token(stub, path)

    state = _final(api, task_id, timeout=20)

    assert state["status"] == "FAILED", state
    assert state["error"]["errorName"] == name
    assert state["error"]["retryable"] is True and state["error"]["stepId"] == "approve"
    late = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert late.status_code in (409, 410)


def test_a_poll_checks_until_its_condition_holds_or_its_attempts_are_spent(api, stub):
    ready = f"/job/{uuid.uuid4().hex[:8]}"
    never = f"/job/{uuid.uuid4().hex[:8]}"
    stub.reply(ready, (200, {"state": "running"}), (200, {"state": "running"}), (200, {"state": "done"}))
    stub.reply(never, *[(200, {"state": "running"})] * 5)

    def poll(path: str) -> dict:
        check = {"type": "http", "url": stub.url + path}
        return {
            "startAt": "wait",
            "steps": {
                "wait": {
                    "type": "poll",
                    "check": check,
                    "until": {"path": "state", "equals": "done"},
                    "intervalSeconds": 1,
                    "maxAttempts": 3,
                    "resultPath": "job",
                    "next": "done",
                },
                "done": {"type": "succeed", "outputPath": "job"},
            },
        }

    done_id, spent_id = _run(api, poll(ready)), _run(api, poll(never))
    done, spent = _final(api, done_id), _final(api, spent_id)

    assert done["status"] == "SUCCEEDED" and done["output"] == {"state": "done"}, done
    assert len(stub.received(ready)) == 3
    assert spent["status"] == "FAILED" and spent["error"]["errorName"] == "PollTimeout", spent
    assert len(stub.received(never)) == 3


def test_a_failing_branch_fails_the_parallel_step_with_its_branch_id(api):
    document = {
        "startAt": "fanout",
        "steps": {
            "fanout": {
                "type": "parallel",
                "maxConcurrency": 2,
                "onBranchError": "fail",
                "branches": [
                    {"id": "a", "startAt": "ok", "steps": {"ok": {"type": "succeed", "outputPath": "branchId"}}},
                    {"id": "b", "startAt": "boom", "steps": {"boom": {"type": "fail", "error": "BranchBroke"}}},
                    {"id": "c", "startAt": "ok", "steps": {"ok": {"type": "succeed", "outputPath": "branchId"}}},
                ],
                "next": "done",
            },
            "done": {"type": "succeed"},
        },
    }
    task_id = _run(api, document)

    state = _final(api, task_id)

    assert state["status"] == "FAILED", state
    assert state["error"]["errorName"] == "BranchBroke"
    assert state["error"]["branchId"] == "b" and state["error"]["stepId"] == "fanout"


def test_cancel_stops_the_durable_execution_and_a_later_resume_is_refused(api, stub, stack):
    path = f"/cancel/{uuid.uuid4().hex[:8]}"
    task_id = _run(api, _wait_flow(stub, path))
    token = _token(stub, path)
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    cancelled = api.call("POST", f"/tasks/{task_id}/cancel", json={"reason": "changed my mind"})
    assert cancelled.status_code == 202, cancelled.text

    state = _final(api, task_id)
    assert state["status"] == "ABORTED" and state["error"]["errorName"] == "Cancelled", state
    assert _execution(stack, task_id, ended=True)["Status"] == "STOPPED"
    late = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert late.status_code == 409


def test_redrive_starts_a_new_execution_from_the_failed_step(api, stub, stack):
    base = f"/redrive/{uuid.uuid4().hex[:8]}"
    first, flaky = f"{base}/first", f"{base}/flaky"
    stub.reply(first, (200, {"n": 1}))
    stub.reply(flaky, (500, {"no": 1}), (200, {"ok": True}))
    document = {
        "startAt": "first",
        "steps": {
            "first": {"type": "http", "url": stub.url + first, "resultPath": "first", "next": "flaky"},
            "flaky": {"type": "http", "url": stub.url + flaky, "resultPath": "flaky", "next": "done"},
            "done": {"type": "succeed"},
        },
    }
    task_id = _run(api, document)
    failed = _final(api, task_id)
    assert failed["status"] == "FAILED" and failed["error"]["stepId"] == "flaky", failed
    first_execution = _execution_arn(stack, task_id)

    redriven = api.call("POST", f"/tasks/{task_id}/redrive")
    assert redriven.status_code == 202, redriven.text

    done = _final(api, task_id)
    assert done["status"] == "SUCCEEDED" and done["redriveCount"] == 1, done
    assert done["output"]["first"] == {"n": 1} and done["output"]["flaky"] == {"ok": True}
    assert len(stub.received(first)) == 1 and len(stub.received(flaky)) == 2
    second_execution = _execution_arn(stack, task_id)
    assert second_execution != first_execution and f"/durable-execution/{task_id}-r1/" in second_execution
    assert _execution(stack, task_id, ended=True)["Status"] == "SUCCEEDED"


def test_a_worker_killed_mid_step_replays_without_running_a_checkpointed_step_again(api, stub, stack):
    base = f"/replay/{uuid.uuid4().hex[:8]}"
    before, slow, after = f"{base}/before", f"{base}/slow", f"{base}/after"
    stub.reply(before, (200, {"n": 1}))
    stub.reply(slow, (200, {"n": 2}))
    stub.reply(after, (200, {"n": 3}))
    gate = stub.hold(slow)
    document = {
        "startAt": "before",
        "steps": {
            "before": {"type": "http", "url": stub.url + before, "resultPath": "before", "next": "slow"},
            "slow": {"type": "http", "url": stub.url + slow, "resultPath": "slow", "next": "after"},
            "after": {"type": "http", "url": stub.url + after, "resultPath": "after", "next": "done"},
            "done": {"type": "succeed"},
        },
    }
    task_id = _run(api, document)
    try:
        stub.wait_for(slow)  # the durable worker is inside the second step
        busy = stack.aws.runtime.busy_pids(DURABLE_HANDLER)
        assert len(busy) == 1, busy
        os.kill(busy[0], signal.SIGKILL)
    finally:
        gate.set()

    state = _final(api, task_id, timeout=90)

    assert state["status"] == "SUCCEEDED", state
    assert len(stub.received(before)) == 1  # checkpointed before the kill: skipped on replay
    assert len(stub.received(slow)) == 2  # cut short before its commit: run again, once
    assert len(stub.received(after)) == 1
    steps = _steps_in_history(api, task_id)
    assert steps.count("slow") == 1 and steps.count("after") == 1 and steps[-1] == "done"


def test_heartbeats_keep_a_wait_alive_past_its_heartbeat_seconds(api, stub):
    path = f"/beat/{uuid.uuid4().hex[:8]}"
    task_id = _run(api, _wait_flow(stub, path, timeout=60, heartbeat=2))
    token = _token(stub, path)
    waiting = api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    until = time.monotonic() + 5  # 2.5 heartbeat intervals, a heartbeat every second
    while time.monotonic() < until:
        beat = api.call("POST", f"/tasks/{task_id}/heartbeat", json={"resumeToken": token})
        assert beat.status_code == 200, beat.text
        time.sleep(1)

    state = api.call("GET", f"/tasks/{task_id}").json()
    assert state["status"] == "WAITING" and state["seq"] == waiting["seq"]  # a heartbeat is no state change
    resumed = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED", "output": 1})
    assert resumed.status_code == 202, resumed.text
    assert _final(api, task_id)["status"] == "SUCCEEDED"


def test_a_quick_run_of_a_durable_flow_answers_its_end(api):
    flow_id = f"durable-{uuid.uuid4().hex[:8]}"
    document = {
        "id": flow_id,
        "engine": "durable",
        "startAt": "double",
        "steps": {
            "double": {"type": "transform", "value": "{{ input.n * 2 }}", "resultPath": "d", "next": "done"},
            "done": {"type": "succeed", "outputPath": "d"},
        },
    }
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201

    answer = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"n": 21}, "wait": 20})

    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "SUCCEEDED" and answer.json()["output"] == 42


def test_a_notify_url_that_refuses_fails_the_task_with_notify_failed(api, stub):
    path = f"/refuse/{uuid.uuid4().hex[:8]}"
    stub.reply(path, (500, "no"))
    document = _wait_flow(stub, path)
    del document["steps"]["approve"]["catch"], document["steps"]["rejected"]  # outside the step: no catch applies
    task_id = _run(api, document)

    state = _final(api, task_id)

    assert state["status"] == "FAILED", state
    assert state["error"]["errorName"] == "NotifyFailed"
    assert "500" in state["error"]["errorMessage"] and state["error"]["stepId"] == "approve"
