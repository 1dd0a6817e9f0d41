"""The task API's Lambda REQUEST authorizer: who calls a `clients` method (schema/operations.json).

API Gateway calls it for every request to a method whose security is `clients` (no cached
result, no identity source: a request without credentials reaches it too). It accepts either an
ID token of the stage's user pool in `Authorization` (aiwf.id_tokens) or the stage API key in
`x-api-key`, and answers a policy allowing that one method with the caller in `context`, which
API Gateway hands the handler as `requestContext.authorizer`:

- a user: `{caller: user, tenant: <custom:tenant>, username, groups: <JSON list>}`, principal `sub`;
  a user without `custom:tenant` is denied;
- the key: `{caller: key, tenant: default, username: "", groups: "[]"}`, principal `apikey:<8 chars>`
  of the key's hash (never the key), and `usageIdentifierKey`, so the usage plan meters it.

No credential, a bad token or a wrong or expired key: `Unauthorized` (API Gateway's 401, which
the API's gateway responses turn into 403 FORBIDDEN).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from aws_lambda_powertools import Logger

from .. import settings
from ..id_tokens import InvalidToken, UserPool, bearer, verify

logger = Logger(service="authorizer")

UNAUTHORIZED = "Unauthorized"  # the exact message API Gateway turns into its 401 UNAUTHORIZED
KEY_TENANT = "default"


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and value:
            return str(value)
    return None


def _policy(principal: str, effect: str, method_arn: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
        "context": context,
    }


def key_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _key_accepted(value: str, now: dt.datetime) -> bool:
    digest = key_hash(value)
    if not any(hmac.compare_digest(digest, known) for known in settings.api_key_hashes()):
        return False
    expires = settings.api_key_expires()
    return not expires or dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) > now


def authorize(event: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """The authorizer's answer for one request event; raises Exception("Unauthorized") to refuse."""
    method_arn = event["methodArn"]
    authorization = _header(event, "authorization")
    if authorization:
        pool = UserPool(settings.user_pool_id(), settings.user_pool_client_id())
        try:
            claims = verify(bearer(authorization), pool)
        except InvalidToken as exc:
            logger.info("refused: invalid ID token", extra={"reason": str(exc)})
            raise Exception(UNAUTHORIZED) from None
        tenant = claims.get("custom:tenant")
        context = {
            "caller": "user",
            "tenant": str(tenant or ""),
            "username": str(claims.get("cognito:username", "")),
            "groups": json.dumps(claims.get("cognito:groups") or []),
        }
        if not tenant:
            logger.info("denied: the user has no tenant", extra={"sub": claims["sub"]})
            return _policy(str(claims["sub"]), "Deny", method_arn, context)
        return _policy(str(claims["sub"]), "Allow", method_arn, context)
    api_key = _header(event, "x-api-key")
    if api_key and _key_accepted(api_key, now or dt.datetime.now(dt.UTC)):
        context = {"caller": "key", "tenant": KEY_TENANT, "username": "", "groups": "[]"}
        answer = _policy(f"apikey:{key_hash(api_key)[:8]}", "Allow", method_arn, context)
        return {**answer, "usageIdentifierKey": api_key}
    logger.info("refused: no ID token and no valid API key")
    raise Exception(UNAUTHORIZED)


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return authorize(event)
