"""The GraphQL task-control handler (graphql-control) on moto in process: it calls the REST task
API's domain functions and answers `{data}` or `{error: {code, message, details}}` (the resolver
code turns the code into the field's errorType); the resume token never appears in an answer."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from aiwf import standard_executions
from aiwf.callbacks import register_wait
from aiwf.flow_store import FlowStore
from aiwf.handlers import graphql
from tests.unit.lambdas.issued_tokens import record_issued_tokens
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import drive

pytestmark = pytest.mark.usefixtures("aws_tables")


@pytest.fixture
def issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resume tokens waits handed out in this test, oldest first."""
    return record_issued_tokens(monkeypatch)


ENGINE_TOKEN = "sfn-task-token-" + "g" * 40
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orchestrator"


class Context:
    function_name = "graphql-control"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:graphql-control"
    aws_request_id = "req"


class FakeStepFunctions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("start", kwargs))
        return {"executionArn": MACHINE.replace(":stateMachine:", ":execution:") + ":" + kwargs["name"]}

    def send_task_success(self, **kwargs: Any) -> None:
        self.calls.append(("success", kwargs))

    def send_task_failure(self, **kwargs: Any) -> None:
        self.calls.append(("failure", kwargs))

    def stop_execution(self, **kwargs: Any) -> None:
        self.calls.append(("stop", kwargs))


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> FakeStepFunctions:
    fake = FakeStepFunctions()
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    from aiwf.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr(standard_executions, "client", lambda service: fake)
    return fake


# AppSync's identity of an IAM caller (an operator); an API key caller's is null.
OPERATOR = {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:user/ci", "username": "AKIA"}


def call(type_name: str, field: str, as_: dict[str, Any] | None = None, **arguments: Any) -> dict[str, Any]:
    """The field as a caller with AppSync identity `as_` (None: the API key) calls it."""
    event = {"arguments": arguments, "identity": as_, "info": {"parentTypeName": type_name, "fieldName": field}}
    return graphql.control_handler(event, Context())


def flow(flow_id: str, wait: bool = False) -> dict[str, Any]:
    steps: dict[str, Any] = {"done": {"type": "succeed"}}
    if wait:
        steps["approve"] = {"type": "wait_for_event", "timeoutSeconds": 3600, "resultPath": "approval", "next": "done"}
    return {"id": flow_id, "startAt": "approve" if wait else "done", "steps": steps}


def new_flow_id() -> str:
    return f"gql-{uuid.uuid4().hex[:8]}"


def test_put_get_list_and_retire_flows() -> None:
    flow_id = new_flow_id()
    put = call("Mutation", "putFlow", OPERATOR, document=flow(flow_id))["data"]
    assert (put["flowId"], put["version"], put["retired"]) == (flow_id, 1, False)
    assert json.loads(put["document"])["startAt"] == "done"
    got = call("Query", "getFlow", flowId=flow_id)["data"]
    assert got == put
    assert call("Query", "getFlow", flowId=flow_id, version=2) == {"data": None}
    listed = call("Query", "listFlows", limit=100)["data"]
    assert {"flowId": flow_id, "version": 1, "retired": False, "updatedAt": put["updatedAt"], "document": None} in (
        listed["items"]
    )
    retired = call("Mutation", "retireFlow", OPERATOR, flowId=flow_id)["data"]
    assert (retired["flowId"], retired["version"], retired["retired"]) == (flow_id, 1, True)
    assert call("Mutation", "retireFlow", OPERATOR, flowId="gql-never")["error"]["code"] == "FLOW_NOT_FOUND"


def test_put_flow_refuses_what_rest_refuses_with_the_same_codes() -> None:
    bad = call("Mutation", "putFlow", OPERATOR, document={"id": new_flow_id(), "startAt": "nowhere", "steps": {}})[
        "error"
    ]
    assert bad["code"] == "INVALID_FLOW" and bad["details"]
    assert call("Mutation", "putFlow", OPERATOR, document=[1])["error"]["code"] == "INVALID_FLOW"
    assert call("Mutation", "putFlow", OPERATOR, document={"id": "Not Valid"})["error"]["code"] == "INVALID_FLOW_ID"
    assert call("Query", "listFlows", limit=0)["error"]["code"] == "INVALID_PARAMETER"


def test_start_task_is_idempotent_and_its_errors_are_the_rest_codes(sfn: FakeStepFunctions) -> None:
    flow_id = new_flow_id()
    FlowStore().register(flow(flow_id))
    name = f"n-{uuid.uuid4().hex[:8]}"
    first = call("Mutation", "startTask", flowId=flow_id, input={"a": 1}, name=name)["data"]
    assert first["status"] in ("PENDING", "RUNNING") and first["flowId"] == flow_id and first["seq"] >= 1
    again = call("Mutation", "startTask", flowId=flow_id, input={"a": 1}, name=name)["data"]
    assert again["taskId"] == first["taskId"]
    assert [c for c, _ in sfn.calls] == ["start"]
    other = call("Mutation", "startTask", flowId=flow_id, input={"a": 2}, name=name)["error"]
    assert other["code"] == "IDEMPOTENCY_CONFLICT"
    assert call("Mutation", "startTask", flowId="gql-missing", input={})["error"]["code"] == "FLOW_NOT_FOUND"
    assert call("Mutation", "startTask", flowId=flow_id, input=[1])["error"]["code"] == "INVALID_REQUEST"
    FlowStore().retire(flow_id)
    assert call("Mutation", "startTask", flowId=flow_id, input={})["error"]["code"] == "FLOW_RETIRED"


def waiting(sfn: FakeStepFunctions) -> str:
    flow_id = new_flow_id()
    FlowStore().register(flow(flow_id, wait=True))
    task_id = call("Mutation", "startTask", flowId=flow_id, input={"doc": 1})["data"]["taskId"]
    drive(task_id)
    register_wait(task_id, "approve", ENGINE_TOKEN)
    return task_id


def test_resume_task_completes_the_token_once_and_never_shows_it(sfn: FakeStepFunctions, issued_tokens) -> None:
    task_id = waiting(sfn)
    (TOKEN,) = issued_tokens
    wrong = call("Mutation", "resumeTask", taskId=task_id, resumeToken="nope", status="SUCCEEDED")["error"]
    assert wrong["code"] == "WRONG_TOKEN"
    answer = call("Mutation", "resumeTask", taskId=task_id, resumeToken=TOKEN, status="SUCCEEDED", output={"ok": 1})
    assert answer["data"]["taskId"] == task_id and TOKEN not in json.dumps(answer)
    assert sfn.calls[-1][0] == "success"
    again = call("Mutation", "resumeTask", taskId=task_id, resumeToken=TOKEN, status="SUCCEEDED")["error"]
    assert again["code"] == "NOT_WAITING"


def test_resume_with_an_error_and_cancel(sfn: FakeStepFunctions, issued_tokens) -> None:
    task_id = waiting(sfn)
    (TOKEN,) = issued_tokens
    failed = call(
        "Mutation",
        "resumeTask",
        taskId=task_id,
        resumeToken=TOKEN,
        status="FAILED",
        error={"errorName": "Rejected", "errorMessage": "no", "errorDetails": None, "retryable": None},
    )
    assert "data" in failed, failed
    assert sfn.calls[-1][0] == "failure"
    task_id = waiting(sfn)
    cancelled = call("Mutation", "cancelTask", taskId=task_id, reason="enough")["data"]
    assert cancelled["status"] == "ABORTED" and cancelled["error"]["errorName"] == "Cancelled"
    assert cancelled["error"]["errorMessage"] == "enough"
    assert call("Mutation", "cancelTask", taskId=task_id)["data"]["status"] == "ABORTED"
    assert call("Mutation", "cancelTask", taskId="missing")["error"]["code"] == "TASK_NOT_FOUND"


def test_an_unknown_field_is_a_bad_request() -> None:
    assert call("Query", "nothing")["error"]["code"] == "BAD_REQUEST"
