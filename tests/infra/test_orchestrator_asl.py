"""The ASL builder's routing, checked as data (execution is covered by tests/integration)."""

from __future__ import annotations

from infra.orchestrator_asl import build_orchestrator_definition

P = "arn:aws:lambda:us-east-1:123456789012:function:p"
F = "arn:aws:lambda:us-east-1:123456789012:function:f"


def _states() -> dict:
    return build_orchestrator_definition(P, F)["States"]


def test_every_route_target_exists():
    states = _states()
    targets = [choice["Next"] for choice in states["Route"]["Choices"]] + [states["Route"]["Default"]]
    for state in states.values():
        targets += [state["Next"]] if "Next" in state else []
        targets += [catch["Next"] for catch in state.get("Catch", [])]
        targets += [choice["Next"] for choice in state.get("Choices", [])]
    assert set(targets) <= set(states)


def test_waits_park_on_a_task_token_with_the_step_timeouts():
    states = _states()
    for name, heartbeat in (("WaitForEvent", False), ("WaitForEventWithHeartbeat", True)):
        wait = states[name]
        assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
        assert wait["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
        assert wait["TimeoutSecondsPath"] == "$.timeoutSeconds"
        assert ("HeartbeatSecondsPath" in wait) is heartbeat
        assert wait["Catch"][0] == {
            "ErrorEquals": ["Workflow.ResumedWithFailure"],
            "ResultPath": None,
            "Next": "ProcessSteps",
        }
        assert wait["Catch"][-1]["Next"] == "NormalizeError"


def test_polls_wait_in_a_wait_state_then_check_and_route_again():
    states = _states()
    assert {"Variable": "$.action", "StringEquals": "POLL", "Next": "PollWait"} in states["Route"]["Choices"]
    assert states["PollWait"] == {
        "Type": "Wait",
        "Comment": states["PollWait"]["Comment"],
        "SecondsPath": "$.seconds",
        "Next": "PollCheck",
    }
    assert states["PollCheck"]["Parameters"]["Payload"]["mode"] == "pollCheck"
    assert states["PollCheck"]["Next"] == "Route"
    assert states["PollCheck"]["Catch"][0]["Next"] == "NormalizeError"


def test_parallel_runs_the_same_step_loop_in_an_inline_map():
    states = _states()
    branches = states["Branches"]
    assert branches["Type"] == "Map"
    assert branches["MaxConcurrencyPath"] == "$.maxConcurrency"
    assert branches["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert branches["ResultPath"] is None and branches["Next"] == "ProcessSteps"
    inner = branches["ItemProcessor"]["States"]
    loop = {"ProcessSteps", "Route", "WaitForEvent", "WaitForEventWithHeartbeat", "PollWait", "PollCheck", "RetryWait"}
    assert {f"Branch{name}" for name in loop} <= set(inner)
    assert inner["BranchProcessSteps"]["Parameters"] == states["ProcessSteps"]["Parameters"] | {"FunctionName": P}
    assert not [state for state in inner.values() if state["Type"] == "Fail"]  # a branch never fails the Map
    targets = {choice["Next"] for choice in inner["BranchRoute"]["Choices"]}
    assert targets <= set(inner) and "BranchEnd" in targets


def test_a_retry_waits_then_runs_the_step_again():
    states = _states()
    assert {"Variable": "$.action", "StringEquals": "RETRY", "Next": "RetryWait"} in states["Route"]["Choices"]
    assert states["RetryWait"]["SecondsPath"] == "$.seconds"
    assert states["RetryWait"]["Next"] == "ProcessSteps"


def test_a_continued_execution_ends_and_names_follow_on():
    from aiwf.history_handover import next_execution_name

    states = _states()
    assert {"Variable": "$.action", "StringEquals": "CONTINUED", "Next": "Continued"} in states["Route"]["Choices"]
    assert states["Continued"]["Type"] == "Succeed"
    assert next_execution_name("t-1", "arn:aws:states:us-east-1:1:execution:m:t-1") == "t-1-c2"
    assert next_execution_name("t-1", "arn:aws:states:us-east-1:1:execution:m:t-1-c2") == "t-1-c3"
