"""The deploy-time registrar stores nothing when any shipped flow is invalid, and says why."""

from __future__ import annotations

import json


def _registrar(stack) -> str:
    functions = stack.client("lambda").list_functions()["Functions"]
    return next(f["FunctionName"] for f in functions if f["FunctionName"].endswith("flow-registrar"))


def test_an_invalid_flow_fails_the_registration_with_every_problem(stack, api):
    good = {"id": "reg-good", "startAt": "done", "steps": {"done": {"type": "succeed"}}}
    dangling = {"id": "reg-bad", "startAt": "a", "steps": {"a": {"type": "transform", "value": 1, "next": "nope"}}}

    answer = stack.client("lambda").invoke(
        FunctionName=_registrar(stack), Payload=json.dumps({"flows": [good, dangling]}).encode()
    )

    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "InvalidFlows"
    assert "reg-bad/steps/a/next: step 'nope' does not exist" in error["errorMessage"]
    assert api.call("GET", "/flows/reg-good").status_code == 404  # all or nothing


def test_registering_the_same_flows_again_makes_no_new_version(stack):
    flow = {"id": "reg-same", "startAt": "done", "steps": {"done": {"type": "succeed"}}}
    answers = [
        json.loads(
            stack.client("lambda")
            .invoke(FunctionName=_registrar(stack), Payload=json.dumps({"flows": [flow]}).encode())["Payload"]
            .read()
        )
        for _ in range(2)
    ]
    assert [a["registered"] for a in answers] == [
        [{"flowId": "reg-same", "version": 1, "outcome": "registered"}],
        [{"flowId": "reg-same", "version": 1, "outcome": "unchanged"}],
    ]


def test_a_flow_over_the_size_limit_fails_the_registration_with_the_limit_named(stack, api):
    steps = {f"s{i}": {"type": "transform", "value": {"i": i}, "next": f"s{i + 1}"} for i in range(9_999)}
    steps["s9999"] = {"type": "succeed"}
    huge = {"id": "reg-huge", "startAt": "s0", "steps": steps}

    answer = stack.client("lambda").invoke(
        FunctionName=_registrar(stack), Payload=json.dumps({"flows": [huge]}).encode()
    )

    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "InvalidFlows"
    assert "reg-huge: FLOW_TOO_LARGE" in error["errorMessage"] and "limit is" in error["errorMessage"]
    assert api.call("GET", "/flows/reg-huge").status_code == 404
