"""ID tokens of the stage's Cognito user pool, verified as AppSync and API Gateway verify them.

A token is accepted when it is signed (RS256) by a key of the pool's JWKS, was issued by the pool
(`iss`), for the pool's app client (`aud`), is an ID token (`token_use` = id, not an access token)
and has not expired (`exp`). The JWKS is fetched once per key id and kept for the life of the
execution environment (PyJWT's `PyJWKClient` cache), so a warm function verifies without a call.

The JWKS lives at `https://cognito-idp.<region>.amazonaws.com/<poolId>/.well-known/jwks.json`:
the Cognito endpoint the SDK resolves, so on the local stack (which points the SDK at the embedded
AWS) the same code reads the embedded pool's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt

from . import aws

ALGORITHMS = ["RS256"]
JWKS_CACHE_SECONDS = 3600
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub", "token_use"]


class InvalidToken(Exception):
    """The token is not an unexpired ID token of this pool for this client."""


@dataclass(frozen=True)
class UserPool:
    """The pool tokens must come from, and the app client they must be for."""

    pool_id: str
    client_id: str

    @property
    def region(self) -> str:
        return self.pool_id.split("_", 1)[0]  # pool ids are `<region>_<suffix>`

    @property
    def issuer(self) -> str:
        """The `iss` of the pool's tokens: the same in the cloud and on the local stack."""
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    def jwks_url(self, endpoint_url: str | None = None) -> str:
        """The pool's public keys, on the Cognito endpoint the SDK talks to (or `endpoint_url`)."""
        base = endpoint_url or aws.client("cognito-idp").meta.endpoint_url
        return f"{base.rstrip('/')}/{self.pool_id}/.well-known/jwks.json"


@cache
def _keys(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS, timeout=5)


def verify(token: str, pool: UserPool, jwks_url: str | None = None) -> dict[str, Any]:
    """The token's claims, or InvalidToken saying why not."""
    try:
        key = _keys(jwks_url or pool.jwks_url()).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            audience=pool.client_id,
            issuer=pool.issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWKClientConnectionError as exc:
        raise InvalidToken(f"the pool's keys could not be read: {exc}") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc) or type(exc).__name__) from exc
    if claims.get("token_use") != "id":
        raise InvalidToken("not an ID token")
    return claims


def bearer(authorization: str) -> str:
    """The token of an `Authorization` value: Cognito clients send it bare, others as `Bearer <token>`."""
    value = authorization.strip()
    return value[7:].strip() if value[:7].lower() == "bearer " else value
