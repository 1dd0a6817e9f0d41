"""How the SDK authenticates each request: operators sign flow registration with SigV4, the
rest carries the user's ID token or the API key."""

from __future__ import annotations

import httpx

from aiwf_sdk import Client
from aiwf_sdk.signing import operator_request
from infra.operations import operations

CREDENTIALS = {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "secret", "region": "eu-west-1"}


def _seen(**options) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"flowId": "f", "version": 1, "retired": True, "items": []})

    client = Client("https://api.example/dev", "the-key", transport=httpx.MockTransport(answer), **options)
    client.request("PUT", "/flows/f", json={"id": "f"})
    client.request("DELETE", "/flows/f")
    client.request("GET", "/tasks")
    return seen


def test_flow_registration_is_signed_and_the_rest_carries_the_key() -> None:
    put, delete, get = _seen(aws_credentials=CREDENTIALS)
    for request in (put, delete):
        authorization = request.headers["authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/execute-api/aws4_request" in authorization
        assert "x-api-key" not in request.headers
    assert get.headers["x-api-key"] == "the-key" and "authorization" not in get.headers


def test_a_users_id_token_replaces_the_key() -> None:
    _, _, get = _seen(aws_credentials=CREDENTIALS, id_token="header.payload.signature")
    assert get.headers["authorization"] == "header.payload.signature" and "x-api-key" not in get.headers


def test_the_outputs_credentials_sign() -> None:
    outputs = {"taskApiUrl": "https://api.example/dev", "apiKey": "k", "awsCredentials": CREDENTIALS}
    client = Client.from_stack_outputs(outputs)
    assert client._http.auth.aws_credentials == CREDENTIALS  # type: ignore[union-attr]


def test_the_sdk_signs_exactly_the_catalogues_operator_operations() -> None:
    for op_id, op in operations().items():
        if "rest" not in op:
            continue
        path = op["rest"]["path"].replace("{flowId}", "f").replace("{taskId}", "t").replace("{waitId}", "w")
        assert operator_request(op["rest"]["method"], path) == (op["callers"]["rest"] == ["operator"]), op_id


def test_without_aws_credentials_registration_is_refused_before_it_is_sent(monkeypatch) -> None:
    import botocore.session

    from aiwf_sdk.errors import ForbiddenError

    monkeypatch.setattr(botocore.session.Session, "get_credentials", lambda self: None)
    sent: list[httpx.Request] = []
    client = Client("https://api.example/dev", "k", transport=httpx.MockTransport(lambda r: sent.append(r)))
    try:
        client.request("PUT", "/flows/f", json={"id": "f"})
    except ForbiddenError as error:
        assert error.code == "FORBIDDEN" and "operator" in error.message
    else:
        raise AssertionError("a registration without credentials was sent")
    assert sent == []
