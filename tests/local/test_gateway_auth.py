"""The local gateway authorizes each method as API Gateway does, with fakes for the functions:
the REQUEST authorizer's event in, its policy and context applied; SigV4 for IAM methods, with
the signer in `requestContext.identity`; MOCK catch-alls for what no method serves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests

from infra.openapi import gateway_body, load_spec
from local.apigw import RestApiGateway
from local.registry import Registry, RestApiRecord
from tests.sigv4 import SigV4

REGION, ACCOUNT = "us-east-1", "123456789012"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aiwf-dev-task-api"
AUTHORIZER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aiwf-dev-authorizer"


def _uri(arn: str) -> str:
    return f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations"


class Functions:
    """The task API function (echoes its event) and an authorizer answering `decide(event)`."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {FUNCTION: [], AUTHORIZER: []}
        self.decide: Any = lambda event: None

    def invoke(self, arn: str, event: str) -> tuple[bytes, str | None]:
        received = json.loads(event)
        self.events[arn].append(received)
        if arn == AUTHORIZER:
            answer = self.decide(received)
            if answer is None:
                return json.dumps({"errorMessage": "Unauthorized", "errorType": "Exception"}).encode(), "Unhandled"
            return json.dumps(answer).encode(), None
        return json.dumps({"statusCode": 200, "body": json.dumps({"ok": True})}).encode(), None


@pytest.fixture
def functions() -> Functions:
    return Functions()


@pytest.fixture
def client(functions: Functions) -> Iterator[Client]:
    registry = Registry()
    registry.rest_apis["api1"] = RestApiRecord(
        "api1", "tasks", gateway_body(load_spec(), _uri(FUNCTION), _uri(AUTHORIZER))
    )
    registry.stages["dev"] = "api1"
    gateway = RestApiGateway(registry, functions.invoke, REGION, ACCOUNT, credentials={"AKIDOPERATOR": "secret"})
    client = Client(gateway)
    yield client
    client.close()


class Client:
    """Requests to the gateway's ASGI app on a loop of its own (never the thread's current loop,
    which the Pulumi runtime of other tests in this process relies on)."""

    def __init__(self, app: RestApiGateway) -> None:
        self.transport = httpx.ASGITransport(app=app)
        self.loop = asyncio.new_event_loop()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://127.0.0.1:9999") as client:
                return await client.request(method, path, **kwargs)

        return self.loop.run_until_complete(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def close(self) -> None:
        self.loop.close()


def _allow(context: dict[str, str]) -> Any:
    def decide(event: dict[str, Any]) -> dict[str, Any]:
        statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
        return {
            "principalId": "sub-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
            "context": context,
        }

    return decide


def test_the_authorizer_gets_a_request_event_and_its_context_reaches_the_handler(client, functions) -> None:
    functions.decide = _allow({"caller": "user", "tenant": "acme", "username": "ann", "groups": "[]"})
    response = client.get("/dev/tasks/t-1", headers={"Authorization": "token"})
    assert response.status_code == 200, response.text
    (event,) = functions.events[AUTHORIZER]
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:api1/dev/GET/tasks/t-1"
    assert event["headers"]["authorization"] == "token" and event["pathParameters"] == {"taskId": "t-1"}
    (proxied,) = functions.events[FUNCTION]
    authorizer = proxied["requestContext"]["authorizer"]
    assert {k: authorizer[k] for k in ("caller", "tenant", "username", "groups", "principalId")} == {
        "caller": "user",
        "tenant": "acme",
        "username": "ann",
        "groups": "[]",
        "principalId": "sub-1",
    }


def test_a_refusal_or_a_deny_is_403_forbidden(client, functions) -> None:
    functions.decide = lambda event: None
    refused = client.get("/dev/tasks")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"

    def deny(event: dict[str, Any]) -> dict[str, Any]:
        answer = _allow({})(event)
        answer["policyDocument"]["Statement"][0]["Effect"] = "Deny"
        return answer

    functions.decide = deny
    denied = client.get("/dev/tasks")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
    assert functions.events[FUNCTION] == []


def test_iam_methods_take_a_valid_signature_and_name_the_signer(client, functions) -> None:
    unsigned = client.put("/dev/flows/f", json={"id": "f"}, headers={"x-api-key": "k"})
    assert unsigned.status_code == 403 and unsigned.json()["error"]["code"] == "FORBIDDEN"
    token = client.put("/dev/flows/f", json={"id": "f"}, headers={"Authorization": "eyJ.a.b"})
    assert token.status_code == 403 and token.json()["error"]["code"] == "FORBIDDEN"
    assert functions.events[AUTHORIZER] == [] and functions.events[FUNCTION] == []

    signer = SigV4({"accessKeyId": "AKIDOPERATOR", "secretAccessKey": "secret", "region": REGION})
    prepared = requests.Request("PUT", "http://127.0.0.1:9999/dev/flows/f", json={"id": "f"}, auth=signer).prepare()
    signed = client.put("/dev/flows/f", content=prepared.body, headers=dict(prepared.headers))
    assert signed.status_code == 200, signed.text
    identity = functions.events[FUNCTION][0]["requestContext"]["identity"]
    assert identity["accessKey"] == "AKIDOPERATOR" and identity["accountId"] == ACCOUNT
    assert identity["userArn"] == f"arn:aws:iam::{ACCOUNT}:user/AKIDOPERATOR"
    bad = SigV4({"accessKeyId": "AKIDOPERATOR", "secretAccessKey": "wrong", "region": REGION})
    prepared = requests.Request("PUT", "http://127.0.0.1:9999/dev/flows/f", json={"id": "f"}, auth=bad).prepare()
    forged = client.put("/dev/flows/f", content=prepared.body, headers=dict(prepared.headers))
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "FORBIDDEN"


def test_what_no_method_serves_is_404_without_credentials(client, functions) -> None:
    for method, path in (("GET", "/dev/nowhere"), ("PATCH", "/dev/tasks"), ("GET", "/dev/")):
        response = client.request(method, path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND", (method, path)
    assert functions.events[AUTHORIZER] == []
