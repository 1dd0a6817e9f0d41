"""Who gets through each door on the local stack, as in the cloud: SigV4 for operator methods,
the Lambda authorizer (a user pool ID token or the API key) for the rest, and the user pool's
ID tokens on AppSync over HTTP and in the real-time handshake."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import boto3
import jwt
import pytest
import requests
import websockets
from moto.utilities.utils import load_resource

from tests.sigv4 import SigV4

HELLO = {
    "startAt": "hi",
    "steps": {"hi": {"type": "transform", "value": "{{ input.name }}", "next": "done"}, "done": {"type": "succeed"}},
}
PASSWORD = "Local-Passw0rd-1"


def _idp(stack) -> Any:
    credentials = stack.outputs["awsCredentials"]
    return boto3.client(
        "cognito-idp",
        endpoint_url=stack.outputs["awsEndpointUrl"],
        region_name=credentials["region"],
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
    )


def sign_in(stack, username: str, tenant: str | None) -> str:
    """A user of the stage's pool, created by an operator in `tenant`, signed in: its ID token."""
    idp, pool, client = _idp(stack), stack.outputs["userPoolId"], stack.outputs["userPoolClientId"]
    attributes = [{"Name": "custom:tenant", "Value": tenant}] if tenant else []
    idp.admin_create_user(UserPoolId=pool, Username=username, UserAttributes=attributes, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username=username, Password=PASSWORD, Permanent=True)
    answer = idp.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    return answer["AuthenticationResult"]["IdToken"]


def _forged(stack, **claims: Any) -> str:
    """A token signed with the embedded pool's own key, with claims a real one would not have."""
    now = int(time.time())
    pool = stack.outputs["userPoolId"]
    payload = {
        "iss": f"https://cognito-idp.{pool.split('_')[0]}.amazonaws.com/{pool}",
        "aud": stack.outputs["userPoolClientId"],
        "sub": str(uuid.uuid4()),
        "token_use": "id",
        "exp": now + 600,
        "iat": now,
        "cognito:username": "forged",
        "custom:tenant": "acme",
        **claims,
    }
    key = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(load_resource("cognitoidp/resources/jwks-private.json")))
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "dummy"})


@pytest.fixture(scope="module")
def user_token(stack) -> str:
    return sign_in(stack, f"ann-{uuid.uuid4().hex[:6]}", "acme")


def _rest(stack, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, stack.outputs["taskApiUrl"] + path, timeout=30, **kwargs)


def _forbidden(response: requests.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "FORBIDDEN", response.text


def test_flow_registration_takes_an_operators_signature_only(stack, user_token: str) -> None:
    flow_id = f"edge-{uuid.uuid4().hex[:8]}"
    document = {**HELLO, "id": flow_id}
    _forbidden(_rest(stack, "PUT", f"/flows/{flow_id}", json=document, headers={"x-api-key": stack.outputs["apiKey"]}))
    _forbidden(_rest(stack, "PUT", f"/flows/{flow_id}", json=document, headers={"Authorization": user_token}))
    _forbidden(_rest(stack, "PUT", f"/flows/{flow_id}", json=document))
    wrong = {**stack.outputs["awsCredentials"], "secretAccessKey": "not-the-secret"}
    _forbidden(_rest(stack, "PUT", f"/flows/{flow_id}", json=document, auth=SigV4(wrong)))
    signed = _rest(stack, "PUT", f"/flows/{flow_id}", json=document, auth=SigV4(stack.outputs["awsCredentials"]))
    assert signed.status_code == 201, signed.text
    _forbidden(_rest(stack, "DELETE", f"/flows/{flow_id}", headers={"x-api-key": stack.outputs["apiKey"]}))
    retired = _rest(stack, "DELETE", f"/flows/{flow_id}", auth=SigV4(stack.outputs["awsCredentials"]))
    assert retired.status_code == 200 and retired.json()["retired"] is True, retired.text


def test_client_methods_take_the_key_or_a_users_id_token(stack, user_token: str) -> None:
    assert _rest(stack, "GET", "/flows", headers={"x-api-key": stack.outputs["apiKey"]}).status_code == 200
    assert _rest(stack, "GET", "/flows", headers={"Authorization": user_token}).status_code == 200
    assert _rest(stack, "GET", "/flows", headers={"Authorization": f"Bearer {user_token}"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "not-the-key"},
        {"Authorization": "garbage"},
        {"Authorization": "a.b.c"},
    ],
    ids=["none", "wrong-key", "garbage", "not-a-jwt"],
)
def test_client_methods_refuse_anything_else(stack, headers: dict[str, str]) -> None:
    _forbidden(_rest(stack, "GET", "/flows", headers=headers))


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 60},
        {"aud": "another-client"},
        {"token_use": "access"},
        {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Another"},
        {"custom:tenant": None},
    ],
    ids=["expired", "wrong-audience", "access-token", "another-pool", "no-tenant"],
)
def test_client_methods_refuse_tokens_that_are_not_valid_id_tokens_of_a_tenant(stack, claims: dict) -> None:
    _forbidden(_rest(stack, "GET", "/tasks", headers={"Authorization": _forged(stack, **claims)}))


def test_unknown_paths_and_methods_are_404_not_found_without_credentials(stack) -> None:
    for method, path in (("GET", "/nowhere"), ("PATCH", "/tasks"), ("GET", "/")):
        response = _rest(stack, method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "NOT_FOUND"


QUERY = "query { listFlows(limit: 1) { items { flowId } } }"


def test_appsync_takes_a_users_id_token_over_http(stack, user_token: str) -> None:
    url = stack.outputs["graphqlUrl"]
    answer = requests.post(url, json={"query": QUERY}, headers={"Authorization": user_token}, timeout=30)
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    refused = requests.post(url, json={"query": QUERY}, headers={"Authorization": _forged(stack, aud="x")}, timeout=30)
    assert refused.status_code == 401, refused.text
    mutation = 'mutation { retireFlow(flowId: "hello") { flowId } }'
    denied = requests.post(url, json={"query": mutation}, headers={"Authorization": user_token}, timeout=30).json()
    assert denied["errors"][0]["errorType"] == "Unauthorized", denied


def test_appsync_takes_a_users_id_token_in_the_real_time_handshake(stack, user_token: str) -> None:
    host = requests.utils.urlparse(stack.outputs["graphqlUrl"]).netloc

    def header(token: str) -> str:
        return base64.b64encode(json.dumps({"host": host, "Authorization": token}).encode()).decode()

    async def handshake(token: str) -> dict:
        url = f"{stack.outputs['realtimeUrl']}?header={header(token)}&payload=e30="
        async with websockets.connect(url, subprotocols=["graphql-ws"]) as socket:
            await socket.send(json.dumps({"type": "connection_init"}))
            return json.loads(await asyncio.wait_for(socket.recv(), 10))

    loop = asyncio.new_event_loop()  # not asyncio.run: a later LocalStack's Pulumi runtime needs the current loop
    try:
        assert loop.run_until_complete(handshake(user_token))["type"] == "connection_ack"
        expired = _forged(stack, exp=int(time.time()) - 60)
        assert loop.run_until_complete(handshake(expired))["type"] == "connection_error"
    finally:
        loop.close()
