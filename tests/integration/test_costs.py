"""The cost lever: a run of inline steps costs one Lambda call and a few transitions (see bench/)."""

from __future__ import annotations

import time
import uuid

from bench.transitions import INLINE_STEPS, counts, inline_flow


def test_ten_inline_steps_cost_three_transitions_and_one_invocation(api, stack):
    flow_id = f"cost-{uuid.uuid4().hex[:8]}"
    assert api.call("PUT", f"/flows/{flow_id}", json={**inline_flow(), "id": flow_id}).status_code == 201
    task_id = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {"n": 1}}).json()["taskId"]
    assert api.wait_for(task_id)["status"] == "SUCCEEDED"
    execution = stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}"
    sfn = stack.client("stepfunctions")
    for _ in range(100):  # the record is final a moment before the execution is
        if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
            break
        time.sleep(0.05)

    transitions, invocations = counts(sfn, execution)

    assert transitions / INLINE_STEPS <= 0.4
    assert invocations <= 2
