"""Least privilege enforced on the local stack: the program's own IAM policies decide what each
function, the state machine and AppSync callers may do, so a policy that lacks an action or names
the wrong resource fails here with AccessDenied, as it would after `pulumi up`.

The policies are patched in the embedded AWS after provisioning (what `pulumi up` would deploy with
the statement missing), on a stack of its own (stage `prod`), so no other test's tasks run while a
role is short of a permission.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from local.iam_enforcement import APPSYNC_SERVICE, LAMBDA_SERVICE, LocalIam, RoleNotAssumable
from local.stack import LocalStack
from tests.integration.conftest import TaskApi
from tests.sigv4 import SigV4

FLOW = {
    "id": "least-privilege",
    "startAt": "prepare",
    "steps": {
        "prepare": {
            "type": "transform",
            "value": {"greeting": "Hello, {{ input.name }}!"},
            "resultPath": "doc",
            "next": "done",
        },
        "done": {"type": "succeed", "outputPath": "doc"},
    },
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(stage="prod", port=0) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> TaskApi:
    task_api = TaskApi(
        stack.outputs["taskApiUrl"], stack.outputs["apiKey"], requests.Session(), SigV4(stack.outputs["awsCredentials"])
    )
    assert task_api.call("PUT", f"/flows/{FLOW['id']}", json=FLOW).status_code == 201
    return task_api


def _run(api: TaskApi) -> dict[str, Any]:
    started = api.call("POST", "/tasks", json={"flowId": FLOW["id"], "input": {"name": "Ada"}})
    assert started.status_code == 201, started.text
    return api.wait_for(started.json()["taskId"], timeout=60)


@contextmanager
def patched_policy(stack: LocalStack, role: str, change: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """The role's inline policy as the program declared it, changed by `change`, until the block ends."""
    iam = stack.client("iam")
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    original = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    document = json.loads(json.dumps(original))
    change(document)
    assert document != original
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
    try:
        yield
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(original))


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    (statement,) = [s for s in document["Statement"] if s.get("Sid") == sid]
    return statement


def without_action(sid: str, action: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        statement = _statement(document, sid)
        statement["Action"] = [a for a in statement["Action"] if a != action]

    return change


def with_resource(sid: str, resource: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        statement = _statement(document, sid)
        statement["Resource"] = resource(statement["Resource"])

    return change


def test_the_program_as_declared_runs_a_task_to_succeeded(api: TaskApi) -> None:
    state = _run(api)
    assert state["status"] == "SUCCEEDED", state
    assert state["output"] == {"greeting": "Hello, Ada!"}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(without_action("StoreReadFlows", "dynamodb:GetItem"), id="missing-action"),
        pytest.param(
            with_resource("StoreReadFlows", lambda arn: arn.replace("aiwf-prod-flows", "aiwf-prod-flow")),
            id="wrong-resource",
        ),
    ],
)
def test_a_function_whose_role_lacks_a_permission_fails_the_task_with_access_denied(
    stack: LocalStack, api: TaskApi, change: Callable[[dict[str, Any]], None]
) -> None:
    """process-steps reads the task's pinned flow version (dynamodb:GetItem on the flows table)."""
    with patched_policy(stack, "aiwf-prod-process-steps", change):
        state = _run(api)
    assert state["status"] == "FAILED", state
    error = state["error"]
    assert error["errorName"] == "ClientError"  # a Lambda runtime error, normalized (its errorType)
    assert "(AccessDeniedException) when calling the GetItem operation" in error["errorMessage"]
    assert "assumed-role/aiwf-prod-process-steps/" in error["errorMessage"]
    assert (
        "dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/aiwf-prod-flows"
        in (error["errorMessage"])
    )
    assert _run(api)["status"] == "SUCCEEDED"  # policies are read at every call: restored, it works again


def test_the_state_machine_invokes_functions_with_its_own_role(stack: LocalStack, api: TaskApi) -> None:
    """Without lambda:InvokeFunction on process-steps, the engine's first invocation is denied; the
    error chain (Finalize, which the role still may invoke) ends the task with the normalized error."""
    process_steps = "arn:aws:lambda:us-east-1:123456789012:function:aiwf-prod-process-steps"

    def change(document: dict[str, Any]) -> None:
        statement = _statement(document, "InvokeStepFunctions")
        statement["Resource"] = [r for r in statement["Resource"] if not r.startswith(process_steps)]

    with patched_policy(stack, "aiwf-prod-orchestrator", change):
        state = _run(api)
    assert state["status"] == "FAILED", state
    assert state["error"]["errorName"] == "Lambda.AccessDeniedException", state["error"]
    assert "lambda:InvokeFunction" in state["error"]["errorMessage"]
    assert "assumed-role/aiwf-prod-orchestrator/" in state["error"]["errorMessage"]


def _signed_mutation(url: str, document: dict[str, Any], credentials: Any) -> requests.Response:
    body = json.dumps(document)
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(credentials, "appsync", "us-east-1").add_auth(request)
    return requests.post(url, data=body, headers=dict(request.headers.items()), timeout=30)


def test_appsync_authorizes_iam_callers_with_their_role_policies(stack: LocalStack) -> None:
    """Only the publisher's role (appsync:GraphQL on Mutation.updateWorkflowState) may publish; the
    task API's role, signing just as well, is refused by its policies."""
    iam = stack.aws.iam if stack.aws else None
    assert isinstance(iam, LocalIam)
    task_id = str(uuid.uuid4())
    mutation = {
        "query": "mutation($i: WorkflowStateInput!) { updateWorkflowState(input: $i) { taskId seq } }",
        "variables": {"i": {"taskId": task_id, "flowId": "least-privilege", "status": "RUNNING", "seq": 1}},
    }
    url = stack.outputs["graphqlUrl"]
    publisher = iam.role_credentials(_role_arn("aiwf-prod-state-publisher"), LAMBDA_SERVICE, "test-publisher")
    allowed = _signed_mutation(url, mutation, publisher).json()
    assert allowed.get("errors") is None, allowed
    assert allowed["data"]["updateWorkflowState"] == {"taskId": task_id, "seq": 1}

    task_api = iam.role_credentials(_role_arn("aiwf-prod-task-api"), LAMBDA_SERVICE, "test-task-api")
    refused = _signed_mutation(url, mutation, task_api).json()
    assert refused["data"] == {"updateWorkflowState": None}
    assert [e["errorType"] for e in refused["errors"]] == ["Unauthorized"]


def test_a_role_that_does_not_trust_the_service_gives_no_credentials(stack: LocalStack) -> None:
    iam = stack.aws.iam if stack.aws else None
    assert isinstance(iam, LocalIam)
    with pytest.raises(RoleNotAssumable, match=r"trust policy does not name appsync\.amazonaws\.com"):
        iam.role_credentials(_role_arn("aiwf-prod-process-steps"), APPSYNC_SERVICE, "test")


def _role_arn(name: str) -> str:
    return f"arn:aws:iam::123456789012:role/{name}"


def test_an_appsync_data_source_invokes_its_function_with_its_service_role(stack: LocalStack, api: TaskApi) -> None:
    """startTask resolves through the control data source, whose role may invoke the control function."""
    mutation = {
        "query": "mutation($f: String!, $i: AWSJSON) { startTask(flowId: $f, input: $i) { taskId status } }",
        "variables": {"f": FLOW["id"], "i": json.dumps({"name": "Ada"})},
    }

    def start() -> dict[str, Any]:
        headers = {"x-api-key": stack.outputs["apiKey"]}
        return requests.post(stack.outputs["graphqlUrl"], json=mutation, headers=headers, timeout=30).json()

    assert start()["data"]["startTask"]["status"] == "PENDING"
    with patched_policy(stack, "aiwf-prod-graphql-control-invoke", without_action_everywhere("lambda:InvokeFunction")):
        refused = start()
    assert refused["data"] is None or refused["data"].get("startTask") is None, refused
    (error,) = refused["errors"]
    assert "AccessDeniedException" in error["message"], error
    assert "assumed-role/aiwf-prod-graphql-control-invoke/" in error["message"], error


def without_action_everywhere(action: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        for statement in document["Statement"]:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            statement["Action"] = [a for a in actions if a != action] or ["lambda:GetFunction"]

    return change
