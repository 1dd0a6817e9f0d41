"""Request limits of the task API, and large values as references in answers: pure, no AWS.

Each limit is refused with a 400, the envelope, its own code and the limit in the message (before
these, a 10k-deep body or a 5,000-digit number crashed the handler: a 502)."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from aiwf import answers, limits
from aiwf.handlers import task_api
from aiwf.settings import get_settings
from aiwf.workflow_state import state_from_image


class Context:
    function_name = "task-api"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:task-api"
    aws_request_id = "req"


def call(method: str, path: str, body: str | bytes | None, *, base64_body: bool = False) -> tuple[int, dict]:
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if base64_body else body.decode()
    event: dict[str, Any] = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json"},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {
            "requestId": "r",
            "stage": "dev",
            "httpMethod": method,
            "path": path,
            **_caller(method, path),
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }
    answer = task_api.handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])


def _caller(method: str, path: str) -> dict[str, Any]:
    """What the gateway hands the handler: an operator's IAM identity on flow registration (an
    AWS_IAM method), else the REST authorizer's context for the API key."""
    if method in ("PUT", "DELETE") and path.startswith("/flows/"):
        return {"identity": {"userArn": "arn:aws:iam::123456789012:user/ci", "accessKey": "AKIA"}}
    return {"authorizer": {"caller": "key", "tenant": "default", "username": "", "groups": "[]"}}


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


ROUTES = [("POST", "/tasks"), ("PUT", "/tasks/t1"), ("PUT", "/flows/f1")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("body", "code", "limit"),
    [
        ('{"flowId": "f", "input": {"x": ' + deep(10_000) + "}}", "JSON_TOO_DEEP", limits.MAX_JSON_DEPTH),
        ('{"flowId": "f", "input": {"n": ' + "9" * 5000 + "}}", "NUMBER_TOO_LARGE", limits.MAX_NUMBER_CHARS),
        ('{"flowId": "f", "input": {"n": 1e999}}', "NUMBER_TOO_LARGE", "double"),
        ('{"flowId": "f", "input": {"s": "' + "x" * (limits.MAX_BODY_BYTES + 1) + '"}}', "BODY_TOO_LARGE", 1048576),
    ],
    ids=["deep", "huge-int", "huge-float", "oversized"],
)
def test_every_body_taking_route_refuses_a_body_over_a_limit(method, path, body, code, limit) -> None:
    status, answer = call(method, path, body)
    assert status == 400
    assert answer["error"]["code"] == code
    assert str(limit) in answer["error"]["message"]
    assert set(answer["error"]) == {"code", "message", "details"}


def test_a_base64_body_is_measured_and_parsed_like_any_other() -> None:
    status, answer = call("POST", "/tasks", ('{"flowId": "f", "input": ' + deep(100) + "}").encode(), base64_body=True)
    assert (status, answer["error"]["code"]) == (400, "JSON_TOO_DEEP")


def test_nan_and_infinity_are_not_json() -> None:
    status, answer = call("POST", "/tasks", '{"flowId": "f", "input": {"n": NaN}}')
    assert (status, answer["error"]["code"]) == (400, "MALFORMED_JSON")


def test_bodies_within_the_limits_parse_as_json() -> None:
    text = json.dumps({"a": json.loads(deep(limits.MAX_JSON_DEPTH - 1)), "n": 10**60, "f": -1.5e300, "s": "[[[{{"})
    assert limits.parse_json(text) == json.loads(text)
    assert limits.parse_json(json.dumps(json.loads(deep(limits.MAX_JSON_DEPTH)))) == json.loads(
        deep(limits.MAX_JSON_DEPTH)
    )
    with pytest.raises(limits.LimitExceeded):
        limits.parse_json(deep(limits.MAX_JSON_DEPTH + 1))


def _flow(steps: int, value: Any = 1) -> dict[str, Any]:
    names = [f"s{i}" for i in range(steps)]
    graph = {name: {"type": "transform", "value": value, "next": after} for name, after in itertools.pairwise(names)}
    graph[names[-1]] = {"type": "succeed"}
    return {"id": "big", "startAt": names[0], "steps": graph}


def test_a_flow_over_the_size_limit_is_refused_with_the_limit_named() -> None:
    status, answer = call("PUT", "/flows/big", json.dumps(_flow(10_000)))
    assert status == 400 and answer["error"]["code"] == "FLOW_TOO_LARGE"
    assert str(limits.MAX_FLOW_BYTES) in answer["error"]["message"]


def test_a_flow_over_the_step_limit_is_refused_with_the_limit_named() -> None:
    flow = _flow(limits.MAX_FLOW_STEPS + 1)
    assert len(json.dumps(flow, separators=(",", ":"))) < limits.MAX_FLOW_BYTES
    status, answer = call("PUT", "/flows/big", json.dumps(flow))
    assert status == 400 and answer["error"]["code"] == "TOO_MANY_STEPS"
    assert str(limits.MAX_FLOW_STEPS) in answer["error"]["message"]


def test_branch_steps_count_towards_the_step_limit() -> None:
    branch = {"id": "b", "startAt": "x", "steps": {f"x{i}": {"type": "succeed"} for i in range(3)}}
    flow = {"steps": {"p": {"type": "parallel", "branches": [branch, branch], "forEach": {"branch": branch}}}}
    assert limits._count_steps(flow) == 1 + 9


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLOAD_BUCKET", "payloads")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def item(**values: Any) -> dict[str, Any]:
    base = {
        "taskId": "t1",
        "flowId": "f",
        "flowVersion": 1,
        "status": "SUCCEEDED",
        "seq": 4,
        "startedAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:01Z",
        "context": "{}",
    }
    return {**base, **values}


def test_a_claim_checked_output_is_a_reference_with_its_size_and_a_link(bucket: None) -> None:
    state = answers.public_state(item(outputRef="tasks/t1/4/output.json", outputBytes=7_000_000))
    assert state["output"]["sizeBytes"] == 7_000_000
    assert "tasks/t1/4/output.json" in state["output"]["$ref"]
    assert "X-Amz-Signature" in state["output"]["$ref"]
    assert list(state) == list(answers.public_state(item(output="1")))


def test_a_large_error_keeps_its_shape_with_the_details_as_the_reference(bucket: None, monkeypatch) -> None:
    error = {"errorName": "Boom", "errorMessage": "m" * 10_000, "errorDetails": "d", "retryable": False}
    monkeypatch.setattr(
        answers.payloads, "decode", lambda _item, name, default=None: error if name == "error" else None
    )
    state = answers.public_state(item(errorRef="tasks/t1/4/error.json", errorBytes=300_000))
    assert state["error"]["errorName"] == "Boom"
    assert len(state["error"]["errorMessage"]) < 5000
    assert state["error"]["errorDetails"]["sizeBytes"] == 300_000


def test_a_page_stops_before_its_budget_but_always_holds_one_item() -> None:
    budget = answers.PageBudget(len, budget=10)
    assert [budget.admit(x) for x in ("aaaaaaaaaaaa", "b", "c")] == [True, False, False]
    budget = answers.PageBudget(len, budget=10)
    assert [budget.admit(x) for x in ("aaaa", "bbbb", "cccc")] == [True, True, False]


def test_a_published_state_carries_the_reference_not_the_large_output(bucket: None) -> None:
    serializer = TypeSerializer()
    image = {
        k: serializer.serialize(v) for k, v in item(outputRef="tasks/t1/4/output.json", outputBytes=900_000).items()
    }
    state = state_from_image(image)
    output = json.loads(state["output"])
    assert isinstance(output, dict) and set(output) == {answers.REF_KEY, "sizeBytes"}, output  # the reference
    assert len(json.dumps(state)) < 240 * 1024
