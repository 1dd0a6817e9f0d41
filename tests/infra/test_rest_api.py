"""The task REST API: its body is the OpenAPI contract, each operation behind its own security."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import yaml
from openapi_spec_validator import validate

from infra.operations import operations, rest_security
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
AUTHORIZER_HANDLER = "aiwf.handlers.authorizer.handler"
ANY_METHOD = "x-amazon-apigateway-any-method"
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
    """schema/tasks-api.yaml is the contract: the deployed API adds integrations, the authorizer's
    function and the 404 catch-alls, and changes nothing else."""
    contract = yaml.safe_load((REPO_ROOT / "schema" / "tasks-api.yaml").read_text())
    body = copy.deepcopy(_body(stack))
    assert body.pop("x-amazon-apigateway-api-key-source") == "AUTHORIZER"
    for path in ("/", "/{proxy+}"):
        assert set(body["paths"].pop(path)) == {ANY_METHOD}
    for item in body["paths"].values():
        assert item.pop(ANY_METHOD)["x-amazon-apigateway-integration"]["type"] == "mock"
    for _, _, operation in _operations(body):
        operation.pop(INTEGRATION_KEY, None)
    body["components"]["securitySchemes"]["clients"]["x-amazon-apigateway-authorizer"].pop("authorizerUri")
    assert body == contract


def test_what_no_method_serves_is_404_not_found_without_credentials(stack: Stack) -> None:
    """API Gateway answers an unmatched method MISSING_AUTHENTICATION_TOKEN, the answer an IAM method
    without a signature gets (403 here): so a MOCK integration answers everything else 404."""
    body = _body(stack)
    for path, item in body["paths"].items():
        catch_all = item[ANY_METHOD]
        assert catch_all["security"] == [], path
        integration = catch_all["x-amazon-apigateway-integration"]
        response = integration["responses"]["default"]
        assert response["statusCode"] == "404"
        assert json.loads(response["responseTemplates"]["application/json"])["error"]["code"] == "NOT_FOUND"
    assert body["x-amazon-apigateway-gateway-responses"]["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "403"


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


def test_every_operation_has_its_own_security_from_its_callers(stack: Stack) -> None:
    """API Gateway applies a method's own security only: each one names the scheme its catalogue
    callers need (IAM for operators, the Lambda authorizer for users and the key, none for tokens)."""
    body = _body(stack)
    assert "security" not in body
    schemes = body["components"]["securitySchemes"]
    catalogue = operations()
    for path, method, operation in _operations(body):
        assert operation["security"] == rest_security(catalogue[operation["operationId"]]), f"{method} {path}"
        kinds = set(catalogue[operation["operationId"]]["callers"]["rest"])
        names = {name for requirement in operation["security"] for name in requirement}
        if kinds == {"operator"}:
            assert [schemes[n]["x-amazon-apigateway-authtype"] for n in names] == ["awsSigv4"], f"{method} {path}"
        elif kinds <= {"user", "key"}:
            assert [schemes[n]["x-amazon-apigateway-authtype"] for n in names] == ["custom"], f"{method} {path}"
        else:
            assert operation["security"] == [], f"{method} {path}"
    assert catalogue["putFlow"]["callers"]["rest"] == ["operator"] == catalogue["retireFlow"]["callers"]["rest"]
    assert stack.one(REST_API).inputs["apiKeySource"] == "AUTHORIZER"


def test_the_authorizer_is_the_authorizer_function_uncached_and_least_privileged(stack: Stack) -> None:
    body = _body(stack)
    authorizer = body["components"]["securitySchemes"]["clients"]["x-amazon-apigateway-authorizer"]
    function = stack.function(AUTHORIZER_HANDLER)
    assert authorizer["authorizerUri"] == function.outputs["invokeArn"]
    assert authorizer["type"] == "request" and authorizer["authorizerResultTtlInSeconds"] == 0
    assert "identitySource" not in authorizer
    variables = function.inputs["environment"]["variables"]
    assert variables["USER_POOL_ID"] == stack.outputs["userPoolId"]
    assert variables["USER_POOL_CLIENT_ID"] == stack.outputs["userPoolClientId"]
    key = stack.outputs["apiKey"]
    assert variables["API_KEY_HASHES"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(function.inputs)
    assert variables["API_KEY_EXPIRES"] == stack.one("aws:appsync/apiKey:ApiKey").inputs["expires"]
    role = stack.role_by_arn(function.inputs["role"])
    assert {s["Sid"] for s in stack.statements_of_role(role)} <= {"OwnLogs", "Tracing"}, "nothing but its logs"


def test_api_gateway_may_invoke_the_function_and_the_authorizer_from_this_api_only(stack: Stack) -> None:
    from_api_gateway = {
        p.inputs["function"]: p
        for p in stack.of_type(PERMISSION)
        if p.inputs["principal"] == "apigateway.amazonaws.com"
    }
    api = stack.one(REST_API)
    handler, authorizer = stack.function(TASK_API_HANDLER), stack.function(AUTHORIZER_HANDLER)
    assert set(from_api_gateway) == {handler.outputs["name"], authorizer.outputs["name"]}
    assert all(p.inputs["action"] == "lambda:InvokeFunction" for p in from_api_gateway.values())
    assert from_api_gateway[handler.outputs["name"]].inputs["sourceArn"] == f"{api.outputs['executionArn']}/*/*/*"
    assert (
        from_api_gateway[authorizer.outputs["name"]].inputs["sourceArn"]
        == f"{api.outputs['executionArn']}/authorizers/*"
    )


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
