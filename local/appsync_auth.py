"""AppSync request authorization on the local stack: API keys, SigV4 verified with botocore, and
ID tokens of the stage's user pool.

A caller is identified by the headers AppSync reads (`x-api-key`, `Authorization` with SigV4
plus `x-amz-date` / `x-amz-security-token`, or `Authorization` with a Cognito ID token), from an
HTTP request or from the JSON header objects the real-time protocol carries. ID tokens are
verified by `aiwf.id_tokens` (the REST authorizer's own check) against the pool's JWKS in the
embedded AWS. A SigV4 signature is recomputed with botocore's own signer against the keys the
embedded AWS issued (`Principals`; without it, a fixed set of local credentials), so a client
that signs wrongly fails here as in AWS, and `Authorizer.permits` asks the signer's policies
whether it may call a field (`appsync:GraphQL`). `verify_sigv4` is shared with the local API
Gateway (service `execute-api`).
"""

from __future__ import annotations

import datetime as dt
import hmac
import importlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

API_KEY = "API_KEY"
AWS_IAM = "AWS_IAM"
COGNITO = "AMAZON_COGNITO_USER_POOLS"
LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
MAX_SKEW = dt.timedelta(minutes=5)
_AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]+)"
)


class Unauthorized(Exception):
    """The request carries no valid credentials (HTTP 401 / a connection or start error)."""

    def __init__(self, message: str = "You are not authorized to make this call.") -> None:
        super().__init__(message)
        self.message = message


class Principals(Protocol):
    """The IAM principals of the embedded AWS (`local.iam_enforcement.LocalIam`): the secret of a key
    it issued, who holds it, and whether that principal's policies allow an action on a resource."""

    def secret(self, access_key_id: str, session_token: str | None) -> str | None: ...

    def principal_arn(self, access_key_id: str, session_token: str | None) -> str | None: ...

    def permits(self, access_key_id: str, session_token: str | None, action: str, resource: str) -> bool: ...


@dataclass(frozen=True)
class Identity:
    """Who called: the auth mode, and for IAM the identity AppSync hands resolvers."""

    mode: str
    detail: dict[str, Any] | None = None  # the resolver event's `identity` (None for API keys)
    access_key_id: str | None = None  # IAM callers: the signing key, its session token and region
    session_token: str | None = None
    region: str | None = None


@dataclass
class Authorizer:
    """Checks callers of one API: its modes, its keys (value -> expiry) and the local credentials."""

    modes: tuple[str, ...]
    api_keys: Mapping[str, str | None]
    credentials: Mapping[str, str] = field(default_factory=dict)  # access key id -> secret key
    account_id: str = "123456789012"
    principals: Principals | None = None  # when given, keys, holders and policies come from IAM
    # The Cognito mode: (pool id, app client regex or None, the pool's JWKS URL), read when called.
    user_pool: Callable[[], tuple[str, str | None, str] | None] = lambda: None

    def permits(self, identity: Identity, action: str, resource: str) -> bool:
        """Whether an IAM caller's policies allow `action` on `resource` (AppSync checks
        `appsync:GraphQL` on each top-level field); true without principals to ask."""
        if self.principals is None or identity.access_key_id is None:
            return True
        return self.principals.permits(identity.access_key_id, identity.session_token, action, resource)

    def identify(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> Identity:
        """The caller's identity from lower-cased headers, or Unauthorized."""
        authorization = headers.get("authorization", "")
        if authorization.startswith("AWS4-HMAC-SHA256") and AWS_IAM in self.modes:
            return self._iam(headers, method, path, body)
        api_key = headers.get("x-api-key")
        if api_key is not None and API_KEY in self.modes:
            self._check_key(api_key)
            return Identity(API_KEY)
        if authorization and COGNITO in self.modes:
            return self._cognito(authorization, headers)
        if not authorization and api_key is None:
            raise Unauthorized("Valid authorization header not provided.")
        raise Unauthorized()

    def _cognito(self, authorization: str, headers: Mapping[str, str]) -> Identity:
        """A user pool ID token: AppSync's Cognito identity, as resolvers receive it."""
        pool = self.user_pool()
        if pool is None:
            raise Unauthorized()
        pool_id, client_regex, jwks_url = pool
        id_tokens = _id_tokens()
        try:
            claims = id_tokens.verify(
                id_tokens.bearer(authorization), id_tokens.UserPool(pool_id, str(_audience(authorization))), jwks_url
            )
        except id_tokens.InvalidToken:
            raise Unauthorized() from None
        if client_regex and not re.fullmatch(client_regex, str(claims["aud"])):
            raise Unauthorized()
        return Identity(
            COGNITO,
            {
                "sub": claims["sub"],
                "issuer": claims["iss"],
                "username": claims.get("cognito:username", claims["sub"]),
                "claims": claims,
                "sourceIp": [headers.get("x-forwarded-for", "127.0.0.1")],
                "defaultAuthStrategy": "ALLOW",
                "groups": claims.get("cognito:groups"),
            },
        )

    def _check_key(self, value: str) -> None:
        if value not in self.api_keys:
            raise Unauthorized()
        expires = self.api_keys[value]
        if expires:
            when = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
            if when <= dt.datetime.now(dt.UTC):
                raise Unauthorized("API key has expired.")

    def _iam(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> Identity:
        signer = verify_sigv4(headers, method, path, body, "appsync", self._secret)
        user_arn = f"arn:aws:iam::{self.account_id}:user/{signer.access_key_id}"
        if self.principals is not None:
            user_arn = self.principals.principal_arn(signer.access_key_id, signer.session_token) or user_arn
        return Identity(
            AWS_IAM,
            {
                "accountId": self.account_id,
                "cognitoIdentityPoolId": None,
                "cognitoIdentityId": None,
                "sourceIp": [headers.get("x-forwarded-for", "127.0.0.1")],
                "username": signer.access_key_id,
                "userArn": user_arn,
                "cognitoIdentityAuthType": None,
                "cognitoIdentityAuthProvider": None,
            },
            access_key_id=signer.access_key_id,
            session_token=signer.session_token,
            region=signer.region,
        )

    def _secret(self, key_id: str, token: str | None) -> str | None:
        return self.principals.secret(key_id, token) if self.principals is not None else self.credentials.get(key_id)


@dataclass(frozen=True)
class Signer:
    """Who signed a request whose SigV4 signature checked out."""

    access_key_id: str
    session_token: str | None
    region: str


class BadSignature(Unauthorized):
    """A SigV4 signature that does not verify (API Gateway: INVALID_SIGNATURE)."""


class IncompleteSignature(Unauthorized):
    """An Authorization header that is not a complete SigV4 one (API Gateway: INCOMPLETE_SIGNATURE)."""


def verify_sigv4(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    service: str,
    secret_of: Callable[[str, str | None], str | None],
) -> Signer:
    """Recompute the request's SigV4 signature with botocore's signer and the signer's secret
    (`secret_of(access key id, session token)`): the signer, or an Unauthorized saying why not."""
    match = _AUTH_HEADER.fullmatch(headers.get("authorization", "").strip())
    if not match:
        raise IncompleteSignature("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.")
    key_id = match["key"]
    token = headers.get("x-amz-security-token")
    secret = secret_of(key_id, token)
    if secret is None:
        raise BadSignature("The security token included in the request is invalid.")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise IncompleteSignature("Missing or malformed X-Amz-Date.") from None
    if abs(dt.datetime.now(dt.UTC) - signed_at) > MAX_SKEW or amz_date[:8] != match["date"]:
        raise BadSignature("Signature expired or dated for another day.")
    if match["service"] != service:
        raise BadSignature(f"Credential should be scoped to correct service: '{service}'.")
    signed = match["signed"].split(";")
    missing = [name for name in signed if name not in headers]
    if missing or "host" not in signed:
        raise BadSignature("The request signature we calculated does not match the signature you provided.")
    path, _, query = path.partition("?")
    request = AWSRequest(
        method=method,
        url=f"https://{headers['host']}{path}" + (f"?{query}" if query else ""),
        headers={name: headers[name] for name in signed},
        data=body,
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(key_id, secret, token), service, match["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise BadSignature("The request signature we calculated does not match the signature you provided.")
    return Signer(key_id, token, match["region"])


def _audience(token: str) -> Any:
    """The token's unverified `aud`: AppSync accepts any client the regex allows, so the verified
    audience is the token's own, then checked against the regex."""
    import jwt

    try:
        return jwt.decode(_id_tokens().bearer(token), options={"verify_signature": False}).get("aud", "")
    except jwt.PyJWTError:
        return ""


def _id_tokens() -> ModuleType:
    """`aiwf.id_tokens`, the REST authorizer's own check (local -> lambdas), importable when the
    stack runs as `python -m local` from the repository root too."""
    if str(LAMBDAS_DIR) not in sys.path:
        sys.path.append(str(LAMBDAS_DIR))
    return importlib.import_module("aiwf.id_tokens")


def lower(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}
