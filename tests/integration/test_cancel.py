"""POST /tasks/{taskId}/cancel on the local stack: a task ends ABORTED from any non-final state,
its execution stops at once (also while blocked on a callback token), nothing keeps running."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
PROCESS_HANDLER = "aiwf.handlers.orchestrator.process"
END_EVENTS = {
    "SUCCEEDED": "ExecutionSucceeded",
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "ABORTED": "ExecutionAborted",
}


def _start(api, steps: dict, start: str, task_input: dict | None = None) -> str:
    flow_id = f"cancel-{uuid.uuid4().hex[:8]}"
    document = {"id": flow_id, "startAt": start, "steps": steps}
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": task_input or {}})
    assert started.status_code == 201, started.text
    return started.json()["taskId"]


def _wait_step(notify_url: str, timeout: int = 600, heartbeat: int | None = None) -> dict:
    step = {"type": "wait_for_event", "timeoutSeconds": timeout, "notify": {"url": notify_url}}
    if heartbeat:
        step["heartbeatSeconds"] = heartbeat
    return {**step, "resultPath": "approval", "next": "done"}


def _cancel(api, task_id: str, reason: str | None = "operator said stop"):
    return api.call("POST", f"/tasks/{task_id}/cancel", json={} if reason is None else {"reason": reason})


def _execution_status(stack, task_id: str, within: float = 5) -> str:
    """The task's execution status once it stopped running (or RUNNING after `within` s). moto reports
    ABORTED only when the engine's worker has ended, so ABORTED means nothing of it still waits; an
    ended execution's history ends with its end event (nothing of it runs after)."""
    sfn = stack.client("stepfunctions")
    arn = stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}"
    deadline = time.monotonic() + within
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    if status != "RUNNING":
        last = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"][-1]  # moto ignores reverseOrder
        assert last["type"] == END_EVENTS[status], last
    return status


def _step_workers(stack) -> set[int]:
    """The process-steps workers running an invocation now (a held step's among them)."""
    busy = set(stack.aws.runtime.busy_pids(PROCESS_HANDLER))
    assert busy, "no process-steps invocation is running"
    return busy


def _until_invocations_end(stack, workers: set[int], within: float = 20) -> None:
    """Until each of `workers` was seen idle once: the invocations they ran (a held step's) have
    returned, so whatever such a step would do after its request (commit, run the next step) is done."""
    deadline = time.monotonic() + within
    while workers := workers & set(stack.aws.runtime.busy_pids(PROCESS_HANDLER)):
        assert time.monotonic() < deadline, f"workers {workers} still run an invocation"
        time.sleep(0.02)


def _assert_aborted(api, stack, task_id: str, reason: str = "operator said stop", step: str | None = None) -> dict:
    state = api.call("GET", f"/tasks/{task_id}").json()
    assert state["status"] == "ABORTED", state
    error = state["error"]
    assert error["errorName"] == "Cancelled" and error["errorMessage"] == reason, error
    assert set(error) == {"errorName", "errorMessage", "errorDetails", "retryable", "stepId", "branchId"}
    if step:
        assert error["stepId"] == step
    assert _execution_status(stack, task_id) == "ABORTED"
    history = api.call("GET", f"/tasks/{task_id}/history").json()["items"]
    assert history[-1]["status"] == "ABORTED" and history[-1]["seq"] == state["seq"]
    return state


def test_cancel_a_running_task_whose_step_hangs(api, stub, stack):
    path = f"/hang/{uuid.uuid4().hex[:8]}"
    after = f"{path}/after"
    gate = stub.hold(path)
    steps = {
        "call": {"type": "http", "url": stub.url + path, "resultPath": "r", "next": "then"},
        "then": {"type": "http", "url": stub.url + after, "resultPath": "s", "next": "done"},
        "done": {"type": "succeed"},
    }
    task_id = _start(api, steps, "call")
    stub.wait_for(path)
    assert api.wait_for(task_id, lambda s: s["status"] == "RUNNING")["status"] == "RUNNING"
    held = _step_workers(stack)

    cancelled = _cancel(api, task_id)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "ABORTED" and cancelled.json()["error"]["errorName"] == "Cancelled"
    gate.set()  # the step's Lambda finishes: it cannot commit after ABORTED, and no next step runs
    state = _assert_aborted(api, stack, task_id, step="call")
    _until_invocations_end(stack, held)  # the step's invocation returned: it would have called `after` by now
    assert stub.received(after) == []
    assert api.call("GET", f"/tasks/{task_id}").json()["seq"] == state["seq"]


def test_cancel_a_waiting_task_ends_it_within_seconds_and_its_token_is_dead(api, stub, stack):
    path = f"/notify/{uuid.uuid4().hex[:8]}"
    task_id = _start(api, {"approve": _wait_step(stub.url + path), "done": {"type": "succeed"}}, "approve")
    token = stub.wait_for(path)[0].body["resumeToken"]
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    assert _cancel(api, task_id).status_code == 202
    # ABORTED only once the engine's worker ended: the callback wait (timeout 600 s) was cut short
    state = _assert_aborted(api, stack, task_id, step="approve")
    assert state["waitingFor"] is None

    resumed = api.call("PUT", f"/tasks/{task_id}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert resumed.status_code == 409, resumed.text
    beat = api.call("POST", f"/tasks/{task_id}/heartbeat", json={"resumeToken": token})
    assert beat.status_code == 409 and beat.json()["error"]["code"] == "NOT_WAITING"


def _polling(stub) -> tuple[str, dict]:
    """A path that answers "busy", and a flow that checks it every second."""
    path = f"/status/{uuid.uuid4().hex[:8]}"
    url = stub.reply(path, (200, {"state": "busy"}))
    steps = {
        "report": {
            "type": "poll",
            "check": {"type": "http", "url": url},
            "until": {"path": "state", "equals": "done"},
            "intervalSeconds": 1,
            "maxAttempts": 100,
            "resultPath": "report",
            "next": "done",
        },
        "done": {"type": "succeed"},
    }
    return path, steps


def test_cancel_a_polling_task_stops_the_checks(api, stub, stack):
    path, steps = _polling(stub)
    task_id = _start(api, steps, "report")
    stub.wait_for(path, count=2)
    assert api.wait_for(task_id, lambda s: s["status"] == "POLLING")["status"] == "POLLING"

    assert _cancel(api, task_id, reason=None).status_code == 202
    _assert_aborted(api, stack, task_id, reason="cancelled by request", step="report")  # the execution ended
    checks = len(stub.received(path))
    # The same poll, not cancelled, checks three times meanwhile: time enough for two of ours.
    control_path, control_steps = _polling(stub)
    control = _start(api, control_steps, "report")
    stub.wait_for(control_path, count=3)
    assert len(stub.received(path)) == checks  # no more poll checks
    assert _cancel(api, control).status_code == 202


def test_cancel_inside_parallel_branches_stops_every_branch(api, stub, stack):
    path = f"/branch/{uuid.uuid4().hex[:8]}"
    hang = f"{path}/hang"
    gate = stub.hold(hang)
    steps = {
        "fan": {
            "type": "parallel",
            "branches": [
                {
                    "id": "waits",
                    "startAt": "w",
                    "steps": {"w": {**_wait_step(stub.url + path), "next": "ok"}, "ok": {"type": "succeed"}},
                },
                {
                    "id": "hangs",
                    "startAt": "h",
                    "steps": {
                        "h": {"type": "http", "url": stub.url + hang, "resultPath": "r", "next": "ok"},
                        "ok": {"type": "succeed"},
                    },
                },
            ],
            "resultPath": "branches",
            "next": "done",
        },
        "done": {"type": "succeed"},
    }
    task_id = _start(api, steps, "fan")
    notified = stub.wait_for(path)[0].body
    token, branch_record = notified["resumeToken"], notified["taskId"]
    stub.wait_for(hang)
    held = _step_workers(stack)

    assert _cancel(api, task_id).status_code == 202
    state = _assert_aborted(api, stack, task_id, step="fan")  # the branch's wait and the hung step were cut short
    gate.set()
    resumed = api.call("PUT", f"/tasks/{branch_record}", json={"resumeToken": token, "status": "SUCCEEDED"})
    assert resumed.status_code == 409, resumed.text  # the branch's record ended ABORTED too
    assert _cancel(api, branch_record).status_code == 200  # a branch record's id names its task
    _until_invocations_end(stack, held)  # the hung branch step's Lambda returned: it could not commit
    branch = api.call("GET", f"/tasks/{branch_record}").json()
    assert branch["status"] == "ABORTED", branch
    after = api.call("GET", f"/tasks/{task_id}").json()
    assert after["status"] == "ABORTED" and after["seq"] == state["seq"], after


def test_cancel_answers_200_when_aborted_409_when_otherwise_final_404_when_unknown(api, stub, stack):
    path = f"/notify/{uuid.uuid4().hex[:8]}"
    task_id = _start(api, {"approve": _wait_step(stub.url + path), "done": {"type": "succeed"}}, "approve")
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    first = _cancel(api, task_id)
    assert first.status_code == 202
    again = _cancel(api, task_id, reason="once more")
    assert again.status_code == 200 and again.json() == api.call("GET", f"/tasks/{task_id}").json()
    assert again.json()["error"]["errorMessage"] == "operator said stop"  # the first cancel's reason stays

    done = _start(api, {"done": {"type": "succeed"}}, "done")
    assert api.wait_for(done)["status"] == "SUCCEEDED"
    final = _cancel(api, done)
    assert final.status_code == 409 and final.json()["error"]["code"] == "ALREADY_FINAL"

    unknown = _cancel(api, str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "TASK_NOT_FOUND"
    bad = api.call("POST", f"/tasks/{task_id}/cancel", json={"reason": 3})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_REQUEST"
    no_body = api.call("POST", f"/tasks/{task_id}/cancel")
    assert no_body.status_code == 200


@pytest.mark.parametrize("attempt", range(3))
def test_a_cancel_racing_a_resume_leaves_one_consistent_end(api, stub, stack, attempt):
    path = f"/notify/{uuid.uuid4().hex[:8]}"
    task_id = _start(api, {"approve": _wait_step(stub.url + path), "done": {"type": "succeed"}}, "approve")
    token = stub.wait_for(path)[0].body["resumeToken"]
    api.wait_for(task_id, lambda s: s["status"] == "WAITING")

    start = threading.Barrier(2)
    answers: dict[str, int] = {}

    def resume() -> None:
        start.wait()
        body = {"resumeToken": token, "status": "SUCCEEDED", "output": {"ok": True}}
        answers["resume"] = api.call("PUT", f"/tasks/{task_id}", json=body).status_code

    def cancel() -> None:
        start.wait()
        answers["cancel"] = _cancel(api, task_id).status_code

    threads = [threading.Thread(target=resume), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    state = api.wait_for(task_id, timeout=20)
    assert state["status"] in ("ABORTED", "SUCCEEDED"), state
    if state["status"] == "SUCCEEDED":  # the resume won and the task ended before the cancel
        assert answers == {"resume": 202, "cancel": 409}, answers
    else:
        assert answers["cancel"] == 202, answers
        assert answers["resume"] in (202, 409), answers  # a resume that lost the race is 409
    # The execution ended (its end event is the last in its history): none of its Lambdas runs still.
    assert _execution_status(stack, task_id, within=20) == state["status"]
    after = api.call("GET", f"/tasks/{task_id}").json()
    assert after["status"] == state["status"] and after["seq"] == state["seq"]
    history = api.call("GET", f"/tasks/{task_id}/history").json()["items"]
    assert [item["seq"] for item in history] == list(range(1, len(history) + 1))
    assert [item["status"] for item in history].count(state["status"]) == 1


def test_cancel_stops_an_execution_the_task_does_not_name_yet(api, stub, stack):
    """The API records the execution once StartExecution answers; a cancel in between (the task
    already RUNNING on a busy machine) still stops it: its name is the task id."""
    path = f"/hang/{uuid.uuid4().hex[:8]}"
    gate = stub.hold(path)
    steps = {
        "call": {"type": "http", "url": stub.url + path, "resultPath": "r", "next": "done"},
        "done": {"type": "succeed"},
    }
    task_id = _start(api, steps, "call")
    stub.wait_for(path)
    api.wait_for(task_id, lambda s: s["status"] == "RUNNING")
    functions = stack.client("lambda").list_functions()["Functions"]
    variables = next(f for f in functions if f["Handler"] == "aiwf.handlers.task_api.handler")["Environment"][
        "Variables"
    ]
    tasks_table = variables["TASKS_TABLE"]
    stack.client("dynamodb").update_item(
        TableName=tasks_table, Key={"taskId": {"S": task_id}}, UpdateExpression="REMOVE executionArn"
    )
    try:
        assert _cancel(api, task_id).status_code == 202
    finally:
        gate.set()
    _assert_aborted(api, stack, task_id, step="call")
