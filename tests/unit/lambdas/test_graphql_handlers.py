"""The publisher and resolver handlers as pure functions (no AWS): what is published, and when a
batch reports a failure."""

from __future__ import annotations

import json
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from aiwf import appsync_client
from aiwf.handlers import graphql as resolver
from aiwf.handlers import publisher
from aiwf.workflow_state import as_graphql, state_from_image

SERIALIZER = TypeSerializer()


class Context:
    function_name = "publisher"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:publisher"
    aws_request_id = "req"


def image(**values: Any) -> dict[str, Any]:
    base = {
        "taskId": "t1",
        "flowId": "f",
        "flowVersion": 1,
        "status": "RUNNING",
        "seq": 2,
        "startedAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:01Z",
        "context": json.dumps({"secret": "never published"}),
        "resumeTokenHash": "abc",
    }
    return {k: SERIALIZER.serialize(v) for k, v in {**base, **values}.items()}


def record(sequence: str, name: str = "MODIFY", **values: Any) -> dict[str, Any]:
    return {"eventName": name, "dynamodb": {"SequenceNumber": sequence, "NewImage": image(**values)}}


def test_a_stream_image_becomes_the_public_state_with_json_text() -> None:
    state = state_from_image(
        image(output=json.dumps({"a": [1]}), error=json.dumps({"errorName": "E", "errorDetails": {"x": 1}}))
    )
    assert set(state) == {
        "taskId",
        "flowId",
        "flowVersion",
        "status",
        "seq",
        "currentStep",
        "branchId",
        "waitingFor",
        "output",
        "error",
        "startedAt",
        "updatedAt",
        "redriveCount",
        "tenantId",
    }
    assert state["output"] == '{"a":[1]}' and state["error"]["errorDetails"] == '{"x":1}'
    assert "never published" not in json.dumps(state) and "abc" not in json.dumps(state)


def test_a_branch_record_publishes_under_its_task() -> None:
    state = state_from_image(image(taskId="t1~3~a", branchId="a", branchOf=json.dumps({"taskId": "t1", "index": 0})))
    assert (state["taskId"], state["branchId"]) == ("t1", "a")


def test_string_outputs_stay_distinguishable_from_objects() -> None:
    assert as_graphql({"output": "done"})["output"] == '"done"'
    assert as_graphql({"output": None})["output"] is None


def test_the_first_failed_record_is_reported_and_later_ones_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHQL_URL", "https://example.appsync-api.us-east-1.amazonaws.com/graphql")
    published: list[int] = []

    def fake_call(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        if variables["input"]["seq"] == 3:
            raise appsync_client.PublishError("HTTP 500")
        published.append(variables["input"]["seq"])
        assert "updateWorkflowState" in query and url.endswith("/graphql")
        return {}

    monkeypatch.setattr(publisher, "call", fake_call)
    event = {"Records": [record("10", seq=2), record("11", seq=3), record("12", seq=4), record("13", "REMOVE", seq=5)]}
    assert publisher.handler(event, Context()) == {"batchItemFailures": [{"itemIdentifier": "11"}]}
    assert published == [2]
    assert publisher.handler({"Records": [record("12", seq=4)]}, Context()) == {"batchItemFailures": []}


def test_bookkeeping_updates_and_removals_are_not_published(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHQL_URL", "https://x/graphql")
    monkeypatch.setattr(publisher, "call", lambda *a: pytest.fail("published"))
    same_seq = record("1", seq=4)
    same_seq["dynamodb"]["OldImage"] = image(seq=4)
    removed = {"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "2", "OldImage": image()}}
    assert publisher.handler({"Records": [same_seq, removed]}, Context()) == {"batchItemFailures": []}


def test_the_resolver_dispatches_on_the_appsync_field(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        resolver, "get_state", lambda task_id, caller: seen.append(("get", task_id)) or {"taskId": task_id}
    )
    monkeypatch.setattr(
        resolver, "history_after", lambda task_id, after, caller: seen.append(("history", (task_id, after))) or []
    )
    event = {"arguments": {"taskId": "t"}, "info": {"parentTypeName": "Query", "fieldName": "getWorkflowState"}}
    assert resolver.handler(event, Context()) == {"taskId": "t"}
    event = {
        "arguments": {"taskId": "t", "afterSeq": 3},
        "info": {"parentTypeName": "Query", "fieldName": "getWorkflowHistory"},
    }
    assert resolver.handler(event, Context()) == []
    assert seen == [("get", "t"), ("history", ("t", 3))]
    with pytest.raises(Exception, match=r"no resolver for Mutation\.updateWorkflowState"):
        resolver.handler({"info": {"parentTypeName": "Mutation", "fieldName": "updateWorkflowState"}}, Context())
