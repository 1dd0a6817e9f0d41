"""Flow validation: schema errors with JSON pointers, plus graph errors the schema cannot see."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from aiwf.flows import validation_errors

ROOT = Path(__file__).resolve().parents[3]
HELLO = yaml.safe_load((ROOT / "flows" / "hello.yaml").read_text())


@pytest.mark.parametrize("path", sorted((ROOT / "flows").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_flows_are_valid(path):
    assert validation_errors(yaml.safe_load(path.read_text())) == []


def test_every_schema_error_is_reported_with_its_location():
    flow = copy.deepcopy(HELLO)
    flow["id"] = "Bad Id"
    flow["steps"]["prepare"]["type"] = "teleport"
    del flow["steps"]["reject"]["error"]

    errors = validation_errors(flow)

    paths = {error["path"] for error in errors}
    assert "/id" in paths
    assert "/steps/prepare/type" in paths
    assert "/steps/reject" in paths


def test_dangling_next_and_unreachable_steps_are_errors():
    flow = copy.deepcopy(HELLO)
    flow["steps"]["prepare"]["next"] = "nowhere"
    assert validation_errors(flow) == [{"path": "/steps/prepare/next", "message": "step 'nowhere' does not exist"}]

    flow = copy.deepcopy(HELLO)
    flow["steps"]["orphan"] = {"type": "succeed"}
    assert validation_errors(flow) == [
        {"path": "/steps/orphan", "message": "step 'orphan' is never reached from startAt"}
    ]


def test_a_condition_takes_exactly_one_operator():
    flow = copy.deepcopy(HELLO)
    flow["steps"]["check"]["choices"][0]["notEquals"] = "x"
    assert any(error["path"] == "/steps/check/choices/0" for error in validation_errors(flow))


def test_non_object_document_is_an_error_not_a_crash():
    assert validation_errors(["not", "a", "flow"])[0]["path"] == "/"


def _with_wait(**wait):
    flow = copy.deepcopy(HELLO)
    flow["steps"]["prepare"]["next"] = "approve"
    flow["steps"]["approve"] = {"type": "wait_for_event", "next": "check", **wait}
    return flow


def test_a_wait_needs_a_timeout_and_a_heartbeat_below_it():
    assert validation_errors(_with_wait(timeoutSeconds=60, heartbeatSeconds=10, notify={"url": "http://x"})) == []
    assert any(e["path"] == "/steps/approve" for e in validation_errors(_with_wait()))
    assert validation_errors(_with_wait(timeoutSeconds=10, heartbeatSeconds=10)) == [
        {"path": "/steps/approve/heartbeatSeconds", "message": "heartbeatSeconds must be less than timeoutSeconds"}
    ]


def test_poll_http_and_task_steps_are_validated():
    flow = copy.deepcopy(HELLO)
    flow["steps"]["prepare"]["next"] = "report"
    flow["steps"]["report"] = {
        "type": "poll",
        "check": {"type": "http", "url": "http://x/{{ taskId }}"},
        "until": {"path": "state", "equals": "done"},
        "intervalSeconds": 1,
        "maxAttempts": 3,
        "next": "call",
    }
    flow["steps"]["call"] = {"type": "http", "method": "POST", "url": "http://x", "body": {"a": 1}, "next": "run"}
    flow["steps"]["run"] = {"type": "task", "handler": "word_count", "input": {"text": "x"}, "next": "check"}
    assert validation_errors(flow) == []

    broken = copy.deepcopy(flow)
    del broken["steps"]["report"]["maxAttempts"]
    broken["steps"]["report"]["check"] = {"type": "shell", "command": "ls"}
    broken["steps"]["call"]["method"] = "TELEPORT"
    del broken["steps"]["run"]["handler"]
    paths = {error["path"] for error in validation_errors(broken)}
    assert {"/steps/report", "/steps/report/check", "/steps/call/method", "/steps/run"} <= paths


def _with_parallel(**parallel):
    flow = copy.deepcopy(HELLO)
    flow["steps"]["prepare"]["next"] = "fanout"
    flow["steps"]["fanout"] = {"type": "parallel", "next": "check", **parallel}
    return flow


def test_parallel_takes_branches_or_for_each_and_checks_each_branch_graph():
    branch = {"startAt": "s", "steps": {"s": {"type": "succeed"}}}
    assert validation_errors(_with_parallel(branches=[{"id": "a", **branch}], onBranchError="continue")) == []
    assert validation_errors(_with_parallel(forEach={"items": "{{ input.xs }}", "branch": branch})) == []
    assert validation_errors(_with_parallel())  # neither
    assert validation_errors(_with_parallel(branches=[branch]))  # a static branch needs an id
    dangling = {"id": "a", "startAt": "s", "steps": {"s": {"type": "transform", "value": 1, "next": "zz"}}}
    assert validation_errors(_with_parallel(branches=[dangling])) == [
        {"path": "/steps/fanout/branches/0/steps/s/next", "message": "step 'zz' does not exist"}
    ]
    twice = [{"id": "a", **branch}, {"id": "a", **branch}]
    assert validation_errors(_with_parallel(branches=twice)) == [
        {"path": "/steps/fanout/branches", "message": "branch ids must be unique"}
    ]
