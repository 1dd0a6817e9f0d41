"""The REST authorizer (aiwf.handlers.authorizer) and ID token verification (aiwf.id_tokens), with
tokens signed by a key of our own served as the pool's JWKS."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from aiwf import id_tokens
from aiwf.handlers import authorizer
from aiwf.settings import environment_name

POOL = id_tokens.UserPool("us-east-1_TestPool1", "client-abc")
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:api1/dev/GET/tasks"
KEY = "k" * 40


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(autouse=True)
def pool(monkeypatch: pytest.MonkeyPatch, signing_key: rsa.RSAPrivateKey) -> None:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwks = {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda self: jwks)
    id_tokens._keys.cache_clear()
    monkeypatch.setenv(environment_name("userPoolId"), POOL.pool_id)
    monkeypatch.setenv(environment_name("userPoolClientId"), POOL.client_id)
    monkeypatch.setenv(environment_name("apiKeyHashes"), authorizer.key_hash(KEY))
    monkeypatch.setenv(environment_name("apiKeyExpires"), "2099-01-01T00:00:00Z")
    monkeypatch.setattr(id_tokens.UserPool, "jwks_url", lambda self, endpoint_url=None: "https://jwks.invalid/")


def _token(key: rsa.RSAPrivateKey, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": POOL.issuer,
        "aud": POOL.client_id,
        "sub": "sub-1",
        "token_use": "id",
        "exp": now + 600,
        "iat": now,
        "cognito:username": "ann",
        "custom:tenant": "acme",
        "cognito:groups": ["admins"],
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256", headers={"kid": "k1"})


def _event(headers: dict[str, str]) -> dict[str, Any]:
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers}


def test_a_users_id_token_is_allowed_with_its_tenant(signing_key: rsa.RSAPrivateKey) -> None:
    answer = authorizer.authorize(_event({"Authorization": _token(signing_key)}))
    assert answer["principalId"] == "sub-1"
    assert answer["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}
    ]
    assert answer["context"] == {"caller": "user", "tenant": "acme", "username": "ann", "groups": '["admins"]'}
    bearer = authorizer.authorize(_event({"authorization": "Bearer " + _token(signing_key)}))
    assert bearer["context"]["tenant"] == "acme"


def test_a_user_without_a_tenant_is_denied(signing_key: rsa.RSAPrivateKey) -> None:
    answer = authorizer.authorize(_event({"Authorization": _token(signing_key, **{"custom:tenant": None})}))
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 10},
        {"aud": "another-client"},
        {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"},
        {"token_use": "access"},
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "access-token"],
)
def test_tokens_that_are_not_this_pools_valid_id_tokens_are_refused(
    signing_key: rsa.RSAPrivateKey, claims: dict[str, Any]
) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.authorize(_event({"Authorization": _token(signing_key, **claims)}))


def test_garbage_and_foreign_signatures_are_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for value in ("garbage", "a.b.c", _token(other)):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorizer.authorize(_event({"Authorization": value}))


def test_the_api_key_acts_for_tenant_default() -> None:
    answer = authorizer.authorize(_event({"x-api-key": KEY}))
    assert answer["context"] == {"caller": "key", "tenant": "default", "username": "", "groups": "[]"}
    assert answer["principalId"].startswith("apikey:") and KEY not in answer["principalId"]
    assert answer["usageIdentifierKey"] == KEY


def test_a_wrong_expired_or_missing_key_is_refused() -> None:
    for headers in ({"x-api-key": "wrong"}, {}):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorizer.authorize(_event(headers))
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.authorize(_event({"x-api-key": KEY}), now=dt.datetime(2099, 1, 2, tzinfo=dt.UTC))


def test_the_pools_issuer_and_keys() -> None:
    pool = id_tokens.UserPool("eu-west-1_abc", "c")
    assert pool.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
    assert id_tokens.bearer("Bearer x.y.z") == "x.y.z" and id_tokens.bearer("x.y.z") == "x.y.z"
