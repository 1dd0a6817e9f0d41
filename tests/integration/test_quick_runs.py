"""Quick runs on the local stack: `POST /tasks` with `"wait": N` answers with the state the task has
when it ends or N seconds pass, in one round trip. Flows without waits or polls run on the Express
machine (StartSyncExecution); a fork moves the run to the Standard machine; the rest runs on
Standard and the API watches it."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _flow(api, steps: dict, start: str) -> str:
    flow_id = f"quick-{uuid.uuid4().hex[:8]}"
    document = {"id": flow_id, "startAt": start, "steps": steps}
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    return flow_id


def _inline_steps(count: int) -> dict:
    steps = {
        f"s{i}": {"type": "transform", "value": f"{{{{ input.n + {i} }}}}", "resultPath": f"v{i}", "next": f"s{i + 1}"}
        for i in range(count)
    }
    steps[f"s{count}"] = {"type": "succeed", "outputPath": f"v{count - 1}"}
    return steps


@pytest.fixture
def express_ends(monkeypatch) -> dict[str, dict]:
    """The Express runs that ended during the test, by name (the task id), with their answers.

    The embedded Step Functions runs StartSyncExecution's execution to its end in the thread that
    serves the call (local/moto_glue/stepfunctions.py), also after the caller stopped waiting; this
    wraps it to note each end: a quick run's positive end marker."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    ended: dict[str, dict] = {}
    original = StepFunctionsParserBackend.start_sync_execution

    def start_sync_execution(self, state_machine_arn: str, name: str | None, execution_input: str):
        output = original(self, state_machine_arn, name, execution_input)
        ended[name or ""] = dict(output)
        return output

    monkeypatch.setattr(StepFunctionsParserBackend, "start_sync_execution", start_sync_execution)
    return ended


def _standard_execution(stack, name: str) -> dict | None:
    arn = stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"
    try:
        return stack.client("stepfunctions").describe_execution(executionArn=arn)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ExecutionDoesNotExist"
        return None


def test_a_short_flow_answers_with_its_output_in_one_round_trip_from_the_express_machine(api, stack) -> None:
    flow_id = _flow(api, _inline_steps(5), "s0")
    answer = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"n": 10}, "wait": 20})
    assert answer.status_code == 201, answer.text
    state = answer.json()
    assert state["status"] == "SUCCEEDED" and state["output"] == 14, state
    assert "resumeToken" not in answer.text
    # It ran on Express: the Standard machine never had an execution of it.
    assert _standard_execution(stack, state["taskId"]) is None
    history = api.call("GET", f"/tasks/{state['taskId']}/history").json()["items"]
    assert [item["seq"] for item in history] == list(range(1, state["seq"] + 1))
    assert history[-1]["status"] == "SUCCEEDED"


def test_a_step_error_answers_failed_with_the_normalized_error(api, stub) -> None:
    path = f"/broken/{uuid.uuid4().hex}"
    stub.reply(path, (500, {"oops": True}))
    steps = {
        "call": {"type": "http", "url": stub.url + path, "resultPath": "r", "next": "done"},
        "done": {"type": "succeed"},
    }
    flow_id = _flow(api, steps, "call")
    state = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}, "wait": 20}).json()
    assert state["status"] == "FAILED", state
    assert state["error"]["stepId"] == "call" and state["error"]["errorName"], state["error"]


def test_a_fork_moves_the_run_to_the_standard_machine_and_the_answer_still_comes_at_the_end(api, stack) -> None:
    branch = {
        "startAt": "b",
        "steps": {"b": {"type": "transform", "value": "{{ branchId }}", "next": "ok"}, "ok": {"type": "succeed"}},
    }
    steps = {
        "prepare": {"type": "transform", "value": "{{ input.n }}", "resultPath": "n", "next": "fanout"},
        "fanout": {
            "type": "parallel",
            "branches": [{"id": f"b{i}", **branch} for i in range(3)],
            "resultPath": "all",
            "next": "done",
        },
        "done": {"type": "succeed", "outputPath": "all"},
    }
    flow_id = _flow(api, steps, "prepare")
    state = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"n": 1}, "wait": 25}).json()
    assert state["status"] == "SUCCEEDED", state
    assert [entry["branchId"] for entry in state["output"]] == ["b0", "b1", "b2"]
    task_id = state["taskId"]
    assert _standard_execution(stack, task_id) is None  # it started on Express...
    continued = _standard_execution(stack, f"{task_id}-c2")  # ...and went on on Standard from the fork
    assert continued is not None and continued["status"] == "SUCCEEDED"
    history = api.call("GET", f"/tasks/{task_id}/history").json()["items"]
    assert [item["seq"] for item in history] == list(range(1, state["seq"] + 1))  # one task, no gap


def test_a_flow_that_waits_runs_on_standard_and_the_answer_comes_after_the_wait(api, stack, stub) -> None:
    notify = f"/notify/{uuid.uuid4().hex}"
    steps = {
        "approve": {
            "type": "wait_for_event",
            "timeoutSeconds": 300,
            "notify": {"url": stub.url + notify},
            "next": "done",
        },
        "done": {"type": "succeed"},
    }
    flow_id = _flow(api, steps, "approve")
    answer = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}, "wait": 2})
    assert answer.status_code == 201
    state = answer.json()
    assert state["status"] == "WAITING" and state["waitingFor"], state  # the answer came while it waits
    assert "resumeToken" not in answer.text
    assert _standard_execution(stack, state["taskId"])["status"] == "RUNNING"
    token = stub.wait_for(notify)[0].body["resumeToken"]
    resumed = api.call("PUT", f"/tasks/{state['taskId']}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert resumed.status_code == 202
    assert api.wait_for(state["taskId"])["status"] == "SUCCEEDED"


def test_a_run_longer_than_the_wait_answers_its_state_of_the_moment_and_goes_on(api, stub) -> None:
    slow = f"/slow/{uuid.uuid4().hex}"
    gate = stub.hold(slow)
    steps = {
        "call": {"type": "http", "url": stub.url + slow, "resultPath": "r", "next": "done"},
        "done": {"type": "succeed"},
    }
    flow_id = _flow(api, steps, "call")
    try:
        state = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}, "wait": 1}).json()
        assert state["status"] in ("PENDING", "RUNNING"), state
    finally:
        gate.set()
    assert api.wait_for(state["taskId"])["status"] == "SUCCEEDED"


def test_the_same_name_again_is_the_same_quick_run(api) -> None:
    flow_id = _flow(api, _inline_steps(2), "s0")
    body = {"flowId": flow_id, "input": {"n": 1}, "wait": 10, "name": f"quick-{uuid.uuid4().hex}"}
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(api.call("POST", "/tasks", json=body))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert len({answer.json()["taskId"] for answer in answers}) == 1
    final = api.wait_for(answers[0].json()["taskId"])
    assert final["status"] == "SUCCEEDED" and final["output"] == 2
    history = api.call("GET", f"/tasks/{final['taskId']}/history").json()["items"]
    assert [item["status"] for item in history].count("SUCCEEDED") == 1  # one run, not four


@pytest.mark.parametrize("wait", [0, 26, -1, "5", 2.5, True])
def test_a_wait_outside_1_to_25_whole_seconds_is_400(api, wait) -> None:
    flow_id = _flow(api, _inline_steps(1), "s0")
    answer = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}, "wait": wait})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and error["details"][0]["path"] == "/wait"


def test_cancel_ends_a_quick_run_waiting_for_a_step_retry(api, stub, express_ends) -> None:
    """Express executions cannot be stopped: the task ends ABORTED at once, and the run ends at its
    next ProcessSteps, which finds the task final; no step runs after the cancel."""
    path = f"/flaky/{uuid.uuid4().hex}"
    stub.reply(path, (503, {"busy": True}))
    steps = {
        "call": {
            "type": "http",
            "url": stub.url + path,
            "resultPath": "r",
            "retry": {"maxAttempts": 3, "intervalSeconds": 3, "backoffRate": 1},
            "next": "done",
        },
        "done": {"type": "succeed"},
    }
    flow_id = _flow(api, steps, "call")
    state = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}, "wait": 1}).json()
    assert state["status"] in ("RUNNING", "PENDING"), state
    cancelled = api.call("POST", f"/tasks/{state['taskId']}/cancel", json={"reason": "enough"})
    assert cancelled.status_code == 202, cancelled.text
    calls = len(stub.received(path))
    deadline = time.monotonic() + 30
    while state["taskId"] not in express_ends:  # the run ends at its next ProcessSteps, after the retry wait
        assert time.monotonic() < deadline, "the quick run did not end"
        time.sleep(0.05)
    run = express_ends[state["taskId"]]
    assert (run["status"], run.get("error")) == ("FAILED", "Cancelled"), run  # it found the task cancelled
    assert len(stub.received(path)) == calls
    final = api.call("GET", f"/tasks/{state['taskId']}").json()
    assert final["status"] == "ABORTED" and final["error"]["errorName"] == "Cancelled"
