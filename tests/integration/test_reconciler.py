"""The status reconciler: an execution stopped outside any step still ends its task."""

from __future__ import annotations

import json
import time
import uuid


def _event(execution: dict, status: str) -> dict:
    return {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": status,
            "input": execution.get("input"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        },
    }


def _wait_until_entered(sfn, execution_arn: str, state: str, polls: int = 3000) -> None:
    """Until the execution's newest history event is entering `state` (polled every 20 ms)."""
    last: dict = {}
    for _ in range(polls):
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]  # (moto ignores reverseOrder)
        last = events[-1] if events else {}
        if last.get("type") == "WaitStateEntered" and last["stateEnteredEventDetails"]["name"] == state:
            return
        time.sleep(0.02)
    raise AssertionError(f"{execution_arn} never entered {state}: last event {last}")


def test_an_aborted_execution_aborts_its_polling_task(api, stub, stack):
    # The task is stopped while it waits between two poll checks: no Lambda runs to end it, only
    # the execution status event can (a stop that lands mid-state ends ABORTED as well, see
    # tests/local/test_local_moto_glue.py; here the point is the reconciler).
    flow_id = f"recon-{uuid.uuid4().hex[:8]}"
    url = stub.reply(f"/job/{flow_id}", (200, {"state": "running"}))
    document = {
        "id": flow_id,
        "startAt": "report",
        "steps": {
            "report": {
                "type": "poll",
                "check": {"type": "http", "url": url},
                "until": {"path": "state", "equals": "done"},
                "intervalSeconds": 60,
                "maxAttempts": 5,
                "next": "done",
            },
            "done": {"type": "succeed"},
        },
    }
    assert api.call("PUT", f"/flows/{flow_id}", json=document).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}}).json()["taskId"]
    sfn = stack.client("stepfunctions")
    execution_arn = stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}"
    _wait_until_entered(sfn, execution_arn, "PollWait")
    assert api.call("GET", f"/tasks/{task_id}").json()["status"] == "POLLING"
    sfn.stop_execution(executionArn=execution_arn, error="Operator.Stop", cause="stopped by a test")
    deadline = time.monotonic() + 30
    while (execution := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the stopped execution never ended"
        time.sleep(0.05)
    assert execution["status"] == "ABORTED", execution

    # EventBridge delivers the execution's status change to the reconciler (no Lambda ran to end it)
    state = api.wait_for(task_id)
    assert state["status"] == "ABORTED"
    assert state["error"]["stepId"] == "report"
    assert state["error"]["errorDetails"]["executionArn"] == execution_arn

    function = stack.client("lambda")
    name = next(
        f["FunctionName"]
        for f in function.list_functions()["Functions"]
        if f["FunctionName"].endswith("status-reconciler")
    )
    event = _event(execution, "ABORTED")
    again = json.loads(function.invoke(FunctionName=name, Payload=json.dumps(event).encode())["Payload"].read())
    assert again == {"taskId": task_id, "changed": False}  # final already: delivered twice, changed once


def test_events_of_finished_or_unknown_tasks_change_nothing(api, stack):
    function = stack.client("lambda")
    name = next(
        f["FunctionName"]
        for f in function.list_functions()["Functions"]
        if f["FunctionName"].endswith("status-reconciler")
    )
    event = {"detail": {"status": "FAILED", "name": "no-such-task", "input": json.dumps({"taskId": "no-such-task"})}}
    answer = json.loads(function.invoke(FunctionName=name, Payload=json.dumps(event).encode())["Payload"].read())
    assert answer == {"taskId": "no-such-task", "changed": False}
