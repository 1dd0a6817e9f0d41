"""POST /tasks/{taskId}/redrive on the local stack: a FAILED / TIMED_OUT / ABORTED task goes on from
the step where it ended; the steps that succeeded are not called again (the stub counts requests)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from aiwf.clock import seconds_since

FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _start(api, document: dict) -> str:
    flow_id = f"redrive-{uuid.uuid4().hex[:8]}"
    assert api.call("PUT", f"/flows/{flow_id}", json={**document, "id": flow_id}).status_code == 201
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"word": "hi"}})
    assert started.status_code == 201, started.text
    return started.json()["taskId"]


def _final(api, task_id: str, timeout: float = 30) -> dict:
    return api.wait_for(task_id, lambda s: s["status"] in FINAL, timeout=timeout)


def _redrive(api, task_id: str):
    return api.call("POST", f"/tasks/{task_id}/redrive")


def _assert_redriven(answer, count: int) -> dict:
    assert answer.status_code == 202, answer.text
    state = answer.json()
    assert state["status"] == "RUNNING" and state["error"] is None and state["redriveCount"] == count, state
    return state


def _history(api, task_id: str) -> list[dict]:
    return api.call("GET", f"/tasks/{task_id}/history").json()["items"]


def _paths(stub) -> tuple[str, str, str]:
    base = f"/redrive/{uuid.uuid4().hex[:8]}"
    return f"{base}/first", f"{base}/flaky", f"{base}/last"


def _three_calls(stub, first: str, flaky: str, last: str) -> dict:
    return {
        "startAt": "first",
        "steps": {
            "first": {"type": "http", "url": stub.url + first, "resultPath": "first", "next": "flaky"},
            "flaky": {"type": "http", "url": stub.url + flaky, "resultPath": "flaky", "next": "last"},
            "last": {"type": "http", "url": stub.url + last, "resultPath": "last", "next": "done"},
            "done": {"type": "succeed"},
        },
    }


def test_redrive_after_a_step_error_runs_from_that_step_only(api, stub):
    first, flaky, last = _paths(stub)
    stub.reply(first, (200, {"n": 1}))
    stub.reply(flaky, (500, {"no": 1}), (500, {"no": 2}), (200, {"ok": True}))
    task_id = _start(api, _three_calls(stub, first, flaky, last))
    failed = _final(api, task_id)
    assert failed["status"] == "FAILED" and failed["error"]["stepId"] == "flaky", failed
    assert failed["redriveCount"] == 0

    _assert_redriven(_redrive(api, task_id), 1)
    again = _final(api, task_id)
    assert again["status"] == "FAILED" and again["redriveCount"] == 1, again
    _assert_redriven(_redrive(api, task_id), 2)
    done = _final(api, task_id)

    assert done["status"] == "SUCCEEDED", done
    assert done["redriveCount"] == 2
    assert done["output"]["first"] == {"n": 1} and done["output"]["flaky"] == {"ok": True}
    assert "error" not in done["output"]  # the context as it was before the failed step
    assert len(stub.received(first)) == 1  # the step that succeeded is not called again
    assert len(stub.received(flaky)) == 3 and len(stub.received(last)) == 1
    history = _history(api, task_id)
    assert [item["seq"] for item in history] == list(range(1, done["seq"] + 1))  # no gap, no reuse
    redrives = [item for item in history if item["status"] == "RUNNING" and item["redriveCount"] > 0]
    assert [(item["redriveCount"], item["currentStep"]) for item in redrives][:1] == [(1, "flaky")]
    assert history[-1]["redriveCount"] == 2


def test_redrive_twice_in_a_row_is_one_redrive(api, stub, stack):
    first, flaky, last = _paths(stub)
    stub.reply(flaky, (500, {"no": 1}), (200, {"ok": True}))
    gate = stub.hold(last)
    task_id = _start(api, _three_calls(stub, first, flaky, last))
    assert _final(api, task_id)["status"] == "FAILED"

    _assert_redriven(_redrive(api, task_id), 1)
    second = _redrive(api, task_id)
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "NOT_REDRIVABLE"
    gate.set()
    done = _final(api, task_id)
    assert done["status"] == "SUCCEEDED" and done["redriveCount"] == 1, done
    assert len(stub.received(flaky)) == 2 and len(stub.received(last)) == 1
    sfn = stack.client("stepfunctions")
    executions = stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:")
    assert sfn.describe_execution(executionArn=f"{executions}:{task_id}-r1")["status"] == "SUCCEEDED"
    with pytest.raises(ClientError):
        sfn.describe_execution(executionArn=f"{executions}:{task_id}-r2")


def test_redrive_after_a_branch_error_reruns_only_the_failed_branch(api, stub):
    base = f"/redrive/{uuid.uuid4().hex[:8]}"
    good, bad = f"{base}/good", f"{base}/bad"
    stub.reply(good, (200, {"good": 1}))
    stub.reply(bad, (503, {"no": 1}), (200, {"bad": "fixed"}))
    document = {
        "startAt": "fanout",
        "steps": {
            "fanout": {
                "type": "parallel",
                "branches": [
                    {
                        "id": "good",
                        "startAt": "call",
                        "steps": {
                            "call": {"type": "http", "url": stub.url + good, "resultPath": "r", "next": "ok"},
                            "ok": {"type": "succeed", "outputPath": "r"},
                        },
                    },
                    {
                        "id": "bad",
                        "startAt": "call",
                        "steps": {
                            "call": {"type": "http", "url": stub.url + bad, "resultPath": "r", "next": "ok"},
                            "ok": {"type": "succeed", "outputPath": "r"},
                        },
                    },
                ],
                "resultPath": "branches",
                "next": "done",
            },
            "done": {"type": "succeed", "outputPath": "branches"},
        },
    }
    task_id = _start(api, document)
    failed = _final(api, task_id)
    assert failed["status"] == "FAILED" and failed["error"]["branchId"] == "bad", failed

    _assert_redriven(_redrive(api, task_id), 1)
    done = _final(api, task_id)

    assert done["status"] == "SUCCEEDED", done
    assert done["output"] == [
        {"branchId": "good", "output": {"good": 1}},
        {"branchId": "bad", "output": {"bad": "fixed"}},
    ]
    assert len(stub.received(good)) == 1 and len(stub.received(bad)) == 2
    seqs = [item["seq"] for item in _history(api, task_id) if item["branchId"] is None]
    assert seqs == list(range(1, done["seq"] + 1))


def test_redrive_after_a_flow_timeout(api, stub):
    first, slow, last = _paths(stub)
    gate = stub.hold(slow)
    document = _three_calls(stub, first, slow, last) | {"timeoutSeconds": 2}
    task_id = _start(api, document)
    stub.wait_for(slow)
    started_at = api.call("GET", f"/tasks/{task_id}").json()["startedAt"]
    while seconds_since(started_at) <= 2:  # the flow's timeout, counted as the runner counts it
        time.sleep(0.05)
    gate.set()  # the slow step ends after the flow's timeout: the task times out before `last`
    timed_out = _final(api, task_id)
    assert timed_out["status"] == "TIMED_OUT" and timed_out["currentStep"] == "last", timed_out

    _assert_redriven(_redrive(api, task_id), 1)  # the timeout counts from the redrive
    done = _final(api, task_id)
    assert done["status"] == "SUCCEEDED" and done["redriveCount"] == 1, done
    assert len(stub.received(first)) == 1 and len(stub.received(slow)) == 1 and len(stub.received(last)) == 1


def test_redrive_after_a_cancel(api, stub, stack):
    first, hang, last = _paths(stub)
    gate = stub.hold(hang)
    task_id = _start(api, _three_calls(stub, first, hang, last))
    stub.wait_for(hang)
    cancelled = api.call("POST", f"/tasks/{task_id}/cancel", json={"reason": "oops"})
    assert cancelled.status_code == 202, cancelled.text
    gate.set()  # the cancelled step's Lambda ends; it cannot commit after ABORTED
    # The execution waited for that Lambda: once it ended (its end event last), nothing of the step runs.
    sfn = stack.client("stepfunctions")
    arn = stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}"
    deadline = time.monotonic() + 20
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the cancelled execution did not end"
        time.sleep(0.05)
    assert sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"][-1]["type"] == "ExecutionAborted"
    assert api.call("GET", f"/tasks/{task_id}").json()["status"] == "ABORTED"

    _assert_redriven(_redrive(api, task_id), 1)
    done = _final(api, task_id)
    assert done["status"] == "SUCCEEDED" and done["redriveCount"] == 1, done
    assert len(stub.received(first)) == 1 and len(stub.received(hang)) == 2 and len(stub.received(last)) == 1


def test_redrive_refuses_running_succeeded_and_fail_step_tasks(api, stub):
    first, hang, last = _paths(stub)
    gate = stub.hold(hang)
    running = _start(api, _three_calls(stub, first, hang, last))
    stub.wait_for(hang)
    refused = _redrive(api, running)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "NOT_REDRIVABLE", refused.text
    gate.set()
    assert _final(api, running)["status"] == "SUCCEEDED"
    refused = _redrive(api, running)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "NOT_REDRIVABLE", refused.text

    failing = _start(api, {"startAt": "boom", "steps": {"boom": {"type": "fail", "error": "Broke"}}})
    assert _final(api, failing)["status"] == "FAILED"
    refused = _redrive(api, failing)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "NOT_REDRIVABLE", refused.text
    assert api.call("GET", f"/tasks/{failing}").json()["redriveCount"] == 0

    missing = _redrive(api, "no-such-task")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "TASK_NOT_FOUND", missing.text


REDRIVE = (
    "mutation($t: ID!) { redriveTask(taskId: $t) { taskId status seq currentStep redriveCount error { errorName } } }"
)


def _graphql(stack, task_id: str) -> dict:
    answer = requests.post(
        stack.outputs["graphqlUrl"],
        json={"query": REDRIVE, "variables": {"t": task_id}},
        headers={"x-api-key": stack.outputs["apiKey"]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_redrive_task_over_graphql_with_the_api_key(api, stub, stack):
    first, flaky, last = _paths(stub)
    stub.reply(flaky, (500, {"no": 1}), (200, {"ok": True}))
    task_id = _start(api, _three_calls(stub, first, flaky, last))
    failed = _final(api, task_id)
    assert failed["status"] == "FAILED"

    answer = _graphql(stack, task_id)
    assert "errors" not in answer, answer
    state = answer["data"]["redriveTask"]
    assert state == {
        "taskId": task_id,
        "status": "RUNNING",
        "seq": failed["seq"] + 1,
        "currentStep": "flaky",
        "redriveCount": 1,
        "error": None,
    }
    done = _final(api, task_id)
    assert done["status"] == "SUCCEEDED" and len(stub.received(first)) == 1
    refused = _graphql(stack, task_id)
    assert refused["data"] is None and refused["errors"][0]["errorType"] == "NOT_REDRIVABLE", refused
    missing = _graphql(stack, "no-such-task")
    assert missing["errors"][0]["errorType"] == "TASK_NOT_FOUND", missing
