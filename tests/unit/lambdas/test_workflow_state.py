"""GraphQL views of stored states: the repository reads, `workflow_state` only formats, and a query,
a history entry and a published stream image carry the same bytes for one state."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import boto3
import pytest

from aiwf.callers import Caller
from aiwf.handlers.graphql import get_state, history_after
from aiwf.repository import Task, TaskRepository
from aiwf.settings import get_settings, store_schema
from aiwf.workflow_state import as_graphql, graphql_state, is_state_change, state_from_image
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("aws_tables")

ERROR = {
    "errorName": "Boom",
    "errorMessage": "it broke",
    "errorDetails": {"code": 7},
    "retryable": False,
    "stepId": "s",
    "branchId": None,
}

OPERATOR = Caller.operator()


def _finished(**changes: object) -> Task:
    now = "2026-01-01T00:00:00.000000Z"
    task = Task(str(uuid.uuid4()), "f", 1, "PENDING", 1, now, now, context={"secret": "ctx"})
    task = replace(task, **changes)
    repo = TaskRepository()
    assert repo.create(task)
    running = repo.save(task, status="RUNNING", current_step="s", waiting_for={"event": "go"})
    return repo.save(running, status="FAILED", error=ERROR, output={"partial": [1, 2]}, resume_token_hash="h")


def _image(task_id: str) -> dict:
    """The stored item in DynamoDB JSON: what a stream record's NewImage holds."""
    return boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=get_settings().tasks_table, Key={"taskId": {"S": task_id}}
    )["Item"]


def test_a_query_and_a_published_image_carry_the_same_bytes():
    task = _finished()
    queried = get_state(task.task_id, OPERATOR)
    published = state_from_image(_image(task.task_id))
    assert json.dumps(queried) == json.dumps(published)
    assert json.dumps(queried) == json.dumps(as_graphql(task.state()))
    assert queried["output"] == '{"partial":[1,2]}' and queried["error"]["errorDetails"] == '{"code":7}'
    assert queried["waitingFor"] == '{"event":"go"}'
    assert "secret" not in json.dumps(queried) and "resumeTokenHash" not in queried


def test_history_after_a_seq_is_in_seq_order_and_formatted_like_the_query():
    task = _finished()
    states = history_after(task.task_id, 1, OPERATOR)
    assert [s["seq"] for s in states] == [2, 3]
    assert json.dumps(states[-1]) == json.dumps(get_state(task.task_id, OPERATOR))
    assert [s["seq"] for s in history_after(task.task_id, None, OPERATOR)] == [1, 2, 3]
    assert history_after("missing", None, OPERATOR) == [] and get_state("missing", OPERATOR) is None


def test_a_branch_record_shows_its_parent_task():
    parent = str(uuid.uuid4())
    branch = _finished(branch_id="b1", branch_of={"taskId": parent, "stepId": "p", "index": 0})
    shown = get_state(branch.task_id, OPERATOR)
    assert (shown["taskId"], shown["branchId"]) == (parent, "b1")
    assert state_from_image(_image(branch.task_id))["taskId"] == parent


def test_a_large_value_is_inlined_by_a_query_and_referenced_when_published(monkeypatch):
    monkeypatch.setenv(store_schema()["payloads"]["thresholdEnvironment"], "64")
    get_settings.cache_clear()
    big = {"text": "y" * 300}
    now = "2026-01-01T00:00:00.000000Z"
    task = Task(str(uuid.uuid4()), "f", 1, "PENDING", 1, now, now)
    repo = TaskRepository()
    assert repo.create(task)
    repo.save(task, status="SUCCEEDED", output=big)
    assert json.loads(get_state(task.task_id, OPERATOR)["output"]) == big
    reference = json.loads(state_from_image(_image(task.task_id))["output"])
    assert set(reference) == {"$ref", "sizeBytes"} and reference["sizeBytes"] == len(json.dumps(big).replace(" ", ""))
    # a list or history entry (no inline allowance) references it the same way (links are signed per call)
    listed = json.loads(graphql_state(repo.get_item(task.task_id))["output"])
    assert listed["sizeBytes"] == reference["sizeBytes"]
    assert listed["$ref"].split("?")[0] == reference["$ref"].split("?")[0]


def test_only_changes_of_seq_are_state_changes():
    new = {"seq": {"N": "2"}}
    assert is_state_change({"eventName": "INSERT", "dynamodb": {"NewImage": new}})
    assert is_state_change({"eventName": "MODIFY", "dynamodb": {"NewImage": new, "OldImage": {"seq": {"N": "1"}}}})
    assert not is_state_change({"eventName": "MODIFY", "dynamodb": {"NewImage": new, "OldImage": new}})
    assert not is_state_change({"eventName": "REMOVE", "dynamodb": {"OldImage": new}})
