"""Limits end to end, over HTTP on the local stack: bad input is a 4xx with the limit named, and a
task with a huge output leaves every answer within Lambda's 6 MB (it used to make every list 502)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from gql import Client, GraphQLRequest, gql

from aiwf.clock import now_iso
from aiwf.repository import (
    LIST_ATTRIBUTE,
    LIST_KEY,
    PAYLOAD_KEY_PREFIX,
    SORT_KEY,
    TENANT_FLOW_KEY,
    TENANT_KEY,
    TENANT_STATUS_KEY,
)
from tests.e2e.conftest import Deployed, run

LAMBDA_ANSWER_LIMIT = 6 * 1024 * 1024
STATE = "taskId status seq output error { errorName errorDetails }"
LIST = gql(f"query($f: String) {{ listWorkflowStates(flowId: $f, limit: 100) {{ items {{ {STATE} }} nextToken }} }}")
ALL = gql(f"query {{ listWorkflowStates(limit: 100) {{ items {{ {STATE} }} nextToken }} }}")
ONE = gql(f"query($t: ID!) {{ getWorkflowState(taskId: $t) {{ {STATE} }} }}")
HISTORY = gql(f"query($t: ID!) {{ getWorkflowHistory(taskId: $t) {{ {STATE} }} }}")


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"flowId": "hello", "input": {"x": ' + _deep(10_000) + "}}", "JSON_TOO_DEEP"),
        ('{"flowId": "hello", "input": {"n": ' + "7" * 5000 + "}}", "NUMBER_TOO_LARGE"),
        ('{"flowId": "hello", "input": {"s": "' + "x" * (12 * 1024 * 1024) + '"}}', "BODY_TOO_LARGE"),
    ],
    ids=["deep-json", "5000-digit-number", "12-MB-body"],
)
def test_bad_bodies_get_a_400_with_the_envelope(deployed: Deployed, body: str, code: str) -> None:
    for method, path in (("POST", "/tasks"), ("PUT", "/tasks/no-such-task"), ("PUT", "/flows/limits")):
        response = deployed.rest(method, path, data=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, (method, path, response.text[:300])
        assert response.json()["error"]["code"] == code


def test_a_10k_step_flow_is_refused_with_the_limit_named(deployed: Deployed) -> None:
    steps = {f"s{i}": {"type": "transform", "value": {"i": i}, "next": f"s{i + 1}"} for i in range(9_999)}
    steps["s9999"] = {"type": "succeed"}
    response = deployed.rest("PUT", "/flows/huge", json={"startAt": "s0", "steps": steps})
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "FLOW_TOO_LARGE" and "limit is" in error["message"]
    assert deployed.rest("GET", "/flows/huge").status_code == 404


def _aws_names(deployed: Deployed) -> tuple[str, str, str]:
    tables = deployed.stack.client("dynamodb").list_tables()["TableNames"]
    buckets = [b["Name"] for b in deployed.stack.client("s3").list_buckets()["Buckets"]]
    tasks = next(t for t in tables if t.endswith("-tasks"))
    history = next(t for t in tables if t.endswith("-history"))
    return tasks, history, next(b for b in buckets if "payload" in b)


def _put_task_with_output(deployed: Deployed, flow_id: str, output: Any, *, inline: bool = False) -> str:
    """A SUCCEEDED task whose output is claim-checked in S3 (or `inline` in the item), written as
    the repository writes one."""
    tasks, history, bucket = _aws_names(deployed)
    task_id = f"big-{uuid.uuid4().hex[:8]}"
    key = f"{PAYLOAD_KEY_PREFIX}{task_id}/2/output.json"
    body = json.dumps(output, separators=(",", ":")).encode()
    if not inline:
        deployed.stack.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    now = now_iso()  # the newest task, so an unfiltered first page shows it whatever ran before
    shared = {
        "taskId": {"S": task_id},
        "flowId": {"S": flow_id},
        "flowVersion": {"N": "1"},
        "status": {"S": "SUCCEEDED"},
        "currentStep": {"S": "done"},
        "startedAt": {"S": now},
        "updatedAt": {"S": now},
        # No outputBytes: an item written before sizes were recorded (the size is read from S3).
        **({"output": {"S": body.decode()}} if inline else {"outputRef": {"S": key}}),
    }
    ddb = deployed.stack.client("dynamodb")
    first = {**shared, "seq": {"N": "1"}, "status": {"S": "PENDING"}}
    first.pop("outputRef", None)
    first.pop("output", None)
    ddb.put_item(TableName=history, Item=first)
    ddb.put_item(TableName=history, Item={**shared, "seq": {"N": "2"}})
    task = {
        **shared,
        "seq": {"N": "2"},
        LIST_ATTRIBUTE: {"S": LIST_KEY},
        SORT_KEY: {"S": f"{now}#{task_id}"},
        # the API key's tenant, and its list keys
        TENANT_KEY: {"S": "default"},
        TENANT_STATUS_KEY: {"S": "default#SUCCEEDED"},
        TENANT_FLOW_KEY: {"S": f"default#{flow_id}"},
    }
    ddb.put_item(TableName=tasks, Item={**task, "context": {"S": "{}"}})
    return task_id


def _is_reference(value: Any, size: int) -> bool:
    return isinstance(value, dict) and value.get("sizeBytes") == size and value["$ref"].startswith("http")


def test_a_7_mb_output_leaves_every_answer_within_lambdas_limit(deployed: Deployed) -> None:
    flow_id = f"big-{uuid.uuid4().hex[:6]}"
    output = {"text": "x" * (7 * 1024 * 1024)}
    size = len(json.dumps(output, separators=(",", ":")))
    task_id = _put_task_with_output(deployed, flow_id, output)

    for query in ("", "?status=SUCCEEDED", f"?flowId={flow_id}", f"?flowId={flow_id}&status=SUCCEEDED", "?limit=100"):
        response = deployed.rest("GET", f"/tasks{query}")
        assert response.status_code == 200, (query, response.text[:300])
        assert len(response.content) < LAMBDA_ANSWER_LIMIT
    listed = deployed.rest("GET", f"/tasks?flowId={flow_id}").json()["items"]
    assert [item["taskId"] for item in listed] == [task_id]
    assert _is_reference(listed[0]["output"], size)

    one = deployed.rest("GET", f"/tasks/{task_id}")
    assert one.status_code == 200 and _is_reference(one.json()["output"], size)
    assert requests.get(one.json()["output"]["$ref"], timeout=30).json() == output  # the link gives the value

    history = deployed.rest("GET", f"/tasks/{task_id}/history")
    assert history.status_code == 200
    assert [item["seq"] for item in history.json()["items"]] == [1, 2]
    assert _is_reference(history.json()["items"][1]["output"], size)

    async def queries() -> list[dict]:
        async with Client(transport=deployed.api_key_http()) as session:
            return [
                await session.execute(GraphQLRequest(LIST, variable_values={"f": flow_id})),
                await session.execute(GraphQLRequest(ALL)),
                await session.execute(GraphQLRequest(ONE, variable_values={"t": task_id})),
                await session.execute(GraphQLRequest(HISTORY, variable_values={"t": task_id})),
            ]

    by_flow, everything, state, states = run(queries())
    assert _is_reference(json.loads(by_flow["listWorkflowStates"]["items"][0]["output"]), size)
    assert task_id in [item["taskId"] for item in everything["listWorkflowStates"]["items"]]
    assert _is_reference(json.loads(state["getWorkflowState"]["output"]), size)
    assert _is_reference(json.loads(states["getWorkflowHistory"][1]["output"]), size)


def test_an_output_over_the_threshold_is_inline_in_a_get_and_a_reference_in_lists(deployed: Deployed) -> None:
    """The real write path: a 300 KB output goes to S3 with its size; GET inlines it, a list links it."""
    flow_id = f"mid-{uuid.uuid4().hex[:6]}"
    flow = {"startAt": "done", "steps": {"done": {"type": "succeed", "outputPath": "input"}}}
    assert deployed.rest("PUT", f"/flows/{flow_id}", json=flow).status_code == 201
    task_input = {"text": "y" * 300_000}
    task = deployed.start(flow_id, task_input, f"mid-{uuid.uuid4().hex[:8]}")
    final = deployed.wait_final(task["taskId"])
    assert final["status"] == "SUCCEEDED" and final["output"] == task_input

    listed = deployed.rest("GET", f"/tasks?flowId={flow_id}").json()["items"]
    assert _is_reference(listed[0]["output"], len(json.dumps(task_input, separators=(",", ":"))))
    assert requests.get(listed[0]["output"]["$ref"], timeout=30).json() == task_input


def test_a_list_page_is_cut_by_its_size_and_the_token_goes_on(deployed: Deployed) -> None:
    """60 tasks with 120 KB outputs (inline in their items, under the S3 threshold) are 7 MB: one
    page of 100 would pass Lambda's limit, so the page ends early and its token lists the rest."""
    flow_id = f"many-{uuid.uuid4().hex[:6]}"
    ids = {_put_task_with_output(deployed, flow_id, {"n": i, "pad": "z" * 120_000}, inline=True) for i in range(60)}
    pages: list[list[str]] = []
    token = None
    while True:
        page = deployed.rest("GET", f"/tasks?flowId={flow_id}&limit=100" + (f"&nextToken={token}" if token else ""))
        assert page.status_code == 200, page.text[:300]
        pages.append([item["taskId"] for item in page.json()["items"]])
        token = page.json()["nextToken"]
        if not token:
            break
    assert len(pages) > 1
    assert sorted(task_id for page in pages for task_id in page) == sorted(ids)


def test_a_history_page_is_cut_by_its_size_and_the_token_goes_on(deployed: Deployed) -> None:
    flow_id = f"hist-{uuid.uuid4().hex[:6]}"
    task_id = _put_task_with_output(deployed, flow_id, {"pad": "h" * 120_000}, inline=True)
    _, history, _ = _aws_names(deployed)
    record = deployed.stack.client("dynamodb").get_item(
        TableName=history, Key={"taskId": {"S": task_id}, "seq": {"N": "2"}}
    )
    for seq in range(3, 61):  # 59 records of 120 KB: 7 MB of history
        item = {**record["Item"], "seq": {"N": str(seq)}}
        deployed.stack.client("dynamodb").put_item(TableName=history, Item=item)
    seqs: list[int] = []
    token = None
    pages = 0
    while True:
        page = deployed.rest("GET", f"/tasks/{task_id}/history" + (f"?nextToken={token}" if token else ""))
        assert page.status_code == 200, page.text[:300]
        seqs += [item["seq"] for item in page.json()["items"]]
        pages += 1
        token = page.json()["nextToken"]
        if not token:
            break
    assert pages > 1 and seqs == list(range(1, 61))

    async def graphql_history() -> list[int]:
        received: list[int] = []
        async with Client(transport=deployed.api_key_http()) as session:
            while True:
                after = received[-1] if received else None
                answer = await session.execute(
                    GraphQLRequest(
                        gql("query($t: ID!, $a: Int) { getWorkflowHistory(taskId: $t, afterSeq: $a) { seq } }"),
                        variable_values={"t": task_id, "a": after},
                    )
                )
                if not answer["getWorkflowHistory"]:
                    return received
                received += [state["seq"] for state in answer["getWorkflowHistory"]]

    assert run(graphql_history()) == list(range(1, 61))


def test_deeply_nested_graphql_variables_get_an_appsync_400(deployed: Deployed) -> None:
    body = '{"query": "query($t: ID!) { getWorkflowState(taskId: $t) { taskId } }", "variables": {"t": "x", "v": '
    body += _deep(10_000) + "}}"
    response = requests.post(
        deployed.outputs["graphqlUrl"],
        data=body,
        headers={"x-api-key": deployed.outputs["apiKey"], "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text[:300]
    answer = response.json()
    assert answer["data"] is None and answer["errors"][0]["errorType"] == "BadRequestException"
