"""The local gateway's own answers follow the API's `x-amazon-apigateway-gateway-responses`, as API
Gateway's do: the declared type, else DEFAULT_4XX / DEFAULT_5XX, else API Gateway's defaults."""

from __future__ import annotations

import json

from infra.openapi import load_spec
from infra.operations import operations as operations_catalogue
from local.apigw import RestApi, gateway_response
from local.registry import RestApiRecord


def _answer(response_type: str, body: dict | None) -> tuple[int, dict, dict]:
    response = gateway_response(response_type, "req-1", body, "dev")
    return response.status_code, json.loads(response.body), dict(response.headers)


def test_without_gateway_responses_the_answers_are_api_gateways_defaults():
    assert _answer("MISSING_AUTHENTICATION_TOKEN", None)[:2] == (403, {"message": "Missing Authentication Token"})
    assert _answer("INVALID_API_KEY", {})[:2] == (403, {"message": "Forbidden"})
    assert _answer("INTEGRATION_FAILURE", {})[:2] == (502, {"message": "Internal server error"})


def test_the_task_api_documents_answer_with_its_error_envelope():
    spec = load_spec()
    # An IAM method without a signature (unknown paths never get here: a MOCK catch-all answers 404)
    for response_type in ("MISSING_AUTHENTICATION_TOKEN", "UNAUTHORIZED", "ACCESS_DENIED", "INVALID_SIGNATURE"):
        status, body, _ = _answer(response_type, spec)
        assert status == 403 and body["error"]["code"] == "FORBIDDEN" and body["error"]["details"] == []
    status, body, _ = _answer("INVALID_API_KEY", spec)
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    status, body, _ = _answer("INTEGRATION_TIMEOUT", spec)  # DEFAULT_5XX keeps the type's status
    assert status == 504
    assert body == {"error": {"code": "INTEGRATION_TIMEOUT", "message": "Endpoint request timed out", "details": []}}


def test_context_variables_and_header_parameters_are_rendered():
    body = {
        "x-amazon-apigateway-gateway-responses": {
            "DEFAULT_4XX": {
                "statusCode": "418",
                "responseParameters": {"gatewayresponse.header.x-why": "'teapot'"},
                "responseTemplates": {
                    "application/json": '{"m": $context.error.messageString, "t": "${context.error.responseType}",'
                    ' "id": "$context.requestId", "unknown": "$context.nothing"}'
                },
            }
        }
    }
    status, rendered, headers = _answer("INVALID_API_KEY", body)
    assert status == 418 and headers["x-why"] == "teapot"
    assert rendered == {"m": "Forbidden", "t": "INVALID_API_KEY", "id": "req-1", "unknown": ""}


def _api(body: dict) -> RestApi:
    return RestApi(RestApiRecord(id="api1", name="tasks", body=body))


def test_a_method_needs_the_key_only_by_its_own_security_as_in_api_gateway():
    """API Gateway ignores the document's root `security`: a method without its own is open. The
    local gateway does the same, so a method the catalogue left without callers fails here too."""
    schemes = {"securitySchemes": {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}}}
    body = {
        "security": [{"api_key": []}],
        "components": schemes,
        "paths": {"/open": {"get": {"summary": "open"}}, "/keyed": {"get": {"security": [{"api_key": []}]}}},
    }
    api = _api(body)
    assert not api.needs_api_key(api.match("/open", "GET").operation)
    assert api.needs_api_key(api.match("/keyed", "GET").operation)


def test_every_task_api_method_is_authorized_by_its_own_security():
    """Operators' methods are AWS_IAM, the others pass the Lambda authorizer: only a method whose
    credential is a resume token in its body is open."""
    api = _api(load_spec())
    operations = [
        item[m] for item in load_spec()["paths"].values() for m in ("get", "put", "post", "delete") if m in item
    ]
    assert len(operations) >= 12
    kinds = {operation["operationId"]: api.authorization(operation)[0] for operation in operations}
    assert {kinds["putFlow"], kinds["retireFlow"]} == {"sigv4"}
    open_ones = {op_id for op_id, kind in kinds.items() if kind not in ("sigv4", "authorizer")}
    assert all(operations_catalogue()[op_id]["callers"]["rest"] == ["token"] for op_id in open_ones), open_ones
