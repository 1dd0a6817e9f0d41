"""The task REST API: its body is the OpenAPI contract, every operation proxies to the handler behind a key."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from openapi_spec_validator import validate

from tests.infra.stackmodel import (
    API_STAGE,
    DEPLOYMENT,
    PERMISSION,
    REPO_ROOT,
    REST_API,
    Stack,
    harness_report,
    start_harness,
)

TASK_API_HANDLER = "aiwf.handlers.task_api.handler"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
INTEGRATION_KEY = "x-amazon-apigateway-integration"


def _body(stack: Stack) -> dict[str, Any]:
    return json.loads(stack.one(REST_API).inputs["body"])


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if method in item
    ]


def test_body_is_a_valid_openapi_3_document(stack: Stack) -> None:
    """API Gateway imports the body as OpenAPI; an invalid document fails only at deploy time."""
    body = _body(stack)
    assert body["openapi"].startswith("3.")
    validate(body)


def test_body_is_the_published_contract_plus_integrations(stack: Stack) -> None:
    """schema/tasks-api.yaml is the contract: the deployed API adds integrations and changes nothing else."""
    contract = yaml.safe_load((REPO_ROOT / "schema" / "tasks-api.yaml").read_text())
    body = copy.deepcopy(_body(stack))
    body.pop("x-amazon-apigateway-api-key-source", None)
    for _, _, operation in _operations(body):
        operation.pop(INTEGRATION_KEY, None)
    assert body == contract


def test_every_operation_proxies_to_the_task_api_function(stack: Stack) -> None:
    invoke_arn = stack.function(TASK_API_HANDLER).outputs["invokeArn"]
    operations = _operations(_body(stack))
    assert len(operations) >= 6
    for path, method, operation in operations:
        integration = operation.get(INTEGRATION_KEY)
        assert integration, f"{method.upper()} {path} has no integration"
        assert integration["type"] == "aws_proxy", f"{method.upper()} {path}"
        assert integration["httpMethod"] == "POST", f"{method.upper()} {path}: Lambda is always invoked with POST"
        assert integration["uri"] == invoke_arn, f"{method.upper()} {path}"


def test_every_operation_requires_the_api_key(stack: Stack) -> None:
    """API Gateway requires a key on a method whose security names an apiKey scheme on header x-api-key;
    only the callbacks by capability (`/callbacks/...`, the resume token is their credential) are open,
    and say so with their own empty `security`."""
    body = _body(stack)
    schemes = body["components"]["securitySchemes"]
    api_key_schemes = {
        name for name, s in schemes.items() if s == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    }
    assert api_key_schemes, schemes
    for path, method, operation in _operations(body):
        requirements = operation.get("security", body.get("security"))
        if path.startswith("/callbacks/"):
            assert operation["security"] == [], f"{method.upper()} {path}"
            continue
        assert requirements, f"{method.upper()} {path} has no security requirement"
        assert all(any(name in api_key_schemes for name in r) for r in requirements), (
            f"{method.upper()} {path} can be called without the API key: {requirements}"
        )
    assert body.get("x-amazon-apigateway-api-key-source") == "HEADER"
    assert stack.one(REST_API).inputs["apiKeySource"] == "HEADER"


def test_api_gateway_may_invoke_the_function_from_this_api_only(stack: Stack) -> None:
    from_api_gateway = [p for p in stack.of_type(PERMISSION) if p.inputs["principal"] == "apigateway.amazonaws.com"]
    assert len(from_api_gateway) == 1, "exactly one API Gateway permission"
    permission = from_api_gateway[0]
    function = stack.function(TASK_API_HANDLER)
    api = stack.one(REST_API)
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["function"] == function.outputs["name"]
    assert permission.inputs["sourceArn"] == f"{api.outputs['executionArn']}/*/*/*"


def test_stage_deploys_this_api(stack: Stack) -> None:
    api, deployment, api_stage = stack.one(REST_API), stack.one(DEPLOYMENT), stack.one(API_STAGE)
    assert deployment.inputs["restApi"] == api.id
    assert api_stage.inputs["deployment"] == deployment.id
    assert api.inputs["endpointConfiguration"]["types"] == "REGIONAL"


def test_deployment_trigger_is_deterministic() -> None:
    """The trigger must change only when the body does: the same program twice gives the same trigger."""
    runs = [start_harness("dev", env={"PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    reports = [harness_report("dev", proc) for proc in runs]
    triggers = [
        next(r for r in report["resources"] if r["type"] == DEPLOYMENT)["inputs"]["triggers"] for report in reports
    ]
    bodies = [next(r for r in report["resources"] if r["type"] == REST_API)["inputs"]["body"] for report in reports]
    assert bodies[0] == bodies[1], "the harness should give the same body in both runs"
    assert triggers[0] == triggers[1]


def test_the_functions_that_announce_waits_know_the_task_api_url(stack: Stack) -> None:
    """A wait's notification gives `{taskApiUrl}/callbacks/{waitId}`: the functions that register
    waits (process-steps, the durable orchestrator) are told the stage's task API URL, which the
    RestApi declared before them gives (its body names the task API function by name, so no cycle)."""
    announcing = ("aiwf.handlers.orchestrator.process", "aiwf.handlers.durable.handler")
    found = [f for f in stack.functions() if f.inputs["handler"] in announcing]
    assert found and any(f.inputs["handler"] == announcing[0] for f in found)
    for function in found:
        assert function.inputs["environment"]["variables"]["TASK_API_URL"] == stack.outputs["taskApiUrl"]
