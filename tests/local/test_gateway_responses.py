"""The local gateway's own answers follow the API's `x-amazon-apigateway-gateway-responses`, as API
Gateway's do: the declared type, else DEFAULT_4XX / DEFAULT_5XX, else API Gateway's defaults."""

from __future__ import annotations

import json

from infra.openapi import load_spec
from local.apigw import gateway_response


def _answer(response_type: str, body: dict | None) -> tuple[int, dict, dict]:
    response = gateway_response(response_type, "req-1", body, "dev")
    return response.status_code, json.loads(response.body), dict(response.headers)


def test_without_gateway_responses_the_answers_are_api_gateways_defaults():
    assert _answer("MISSING_AUTHENTICATION_TOKEN", None)[:2] == (403, {"message": "Missing Authentication Token"})
    assert _answer("INVALID_API_KEY", {})[:2] == (403, {"message": "Forbidden"})
    assert _answer("INTEGRATION_FAILURE", {})[:2] == (502, {"message": "Internal server error"})


def test_the_task_api_documents_answer_with_its_error_envelope():
    spec = load_spec()
    status, body, _ = _answer("MISSING_AUTHENTICATION_TOKEN", spec)
    assert status == 404 and body["error"]["code"] == "NOT_FOUND" and body["error"]["details"] == []
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
