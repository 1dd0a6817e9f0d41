"""Who is calling, read from the event each API hands the runtime, and what that caller may do.

Four kinds of caller, the catalogue's vocabulary (schema/operations.json `callers`): `operator`
(IAM, SigV4: every tenant), `user` (an ID token of the stage's user pool: its `custom:tenant`),
`key` (the stage API key: tenant `default`), `token` (a resume token alone: callbacks only, its
handler checks the token). The gateways establish the identity (the REST authorizer, AppSync's
auth modes); this module only reads what they pass, so a handler never parses headers itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import Forbidden
from .operations import OPERATIONS

DEFAULT_TENANT = "default"
OPERATOR, USER, KEY, TOKEN = "operator", "user", "key", "token"
KINDS = frozenset({OPERATOR, USER, KEY, TOKEN})
# The catalogue said `iam` for operators before the caller kinds were named; read it as operator.
_ALIASES = {"iam": OPERATOR}
TENANT_CLAIM = "custom:tenant"


@dataclass(frozen=True)
class Caller:
    """One caller: its kind, the tenant it acts for (None for an operator: every tenant), and who
    it is (for logs and inbox assignment; never an authority by itself)."""

    kind: str
    tenant: str | None
    username: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)
    principal: str = ""

    @property
    def is_operator(self) -> bool:
        return self.kind == OPERATOR

    def sees(self, tenant_id: str | None) -> bool:
        """Whether this caller may see a task of `tenant_id` (a record without one is `default`)."""
        return self.is_operator or (tenant_id or DEFAULT_TENANT) == self.tenant

    def tenant_for_start(self, requested: str | None) -> str:
        """The tenant a task this caller starts belongs to: an operator's choice (default
        `default`); anyone else's own, and asking for another is FORBIDDEN."""
        if self.is_operator:
            return requested or DEFAULT_TENANT
        assert self.tenant is not None
        if requested is not None and requested != self.tenant:
            raise Forbidden(f"a {self.kind} caller starts tasks in its own tenant only", code="FORBIDDEN")
        return self.tenant

    @classmethod
    def operator(cls, principal: str = "") -> Caller:
        return cls(OPERATOR, None, principal=principal)

    @classmethod
    def api_key(cls, principal: str = "apikey") -> Caller:
        return cls(KEY, DEFAULT_TENANT, principal=principal)

    @classmethod
    def from_rest(cls, event: dict[str, Any]) -> Caller:
        """The caller of an API Gateway REST proxy event: the Lambda authorizer's context (a user
        or the API key), else the IAM identity API Gateway filled for an AWS_IAM method."""
        context = event.get("requestContext") or {}
        authorizer = context.get("authorizer") or {}
        kind = authorizer.get("caller")
        if kind in (USER, KEY):
            tenant = DEFAULT_TENANT if kind == KEY else authorizer.get("tenant")
            if not tenant:
                raise Forbidden("the caller has no tenant", code="FORBIDDEN")
            return cls(
                kind,
                tenant,
                username=authorizer.get("username") or "",
                groups=_groups(authorizer.get("groups")),
                principal=str(authorizer.get("principalId") or ""),
            )
        identity = context.get("identity") or {}
        if identity.get("userArn") or identity.get("accessKey"):
            return cls.operator(identity.get("userArn") or identity.get("caller") or "")
        # No credential the gateway checked: an open method's caller (a callback, whose resume
        # token its handler checks); `authorize` refuses it anything else.
        return cls(TOKEN, None, principal="anonymous")

    @classmethod
    def from_appsync(cls, event: dict[str, Any]) -> Caller:
        """The caller of an AppSync resolver event (`identity`): Cognito (claims), IAM (an ARN or
        account), or null: the API key."""
        identity = event.get("identity")
        if not identity:
            return cls.api_key()
        claims = identity.get("claims")
        if isinstance(claims, dict):
            tenant = claims.get(TENANT_CLAIM)
            if not tenant:
                raise Forbidden("the user has no tenant", code="FORBIDDEN")
            return cls(
                USER,
                str(tenant),
                username=str(identity.get("username") or claims.get("cognito:username") or ""),
                groups=_groups(identity.get("groups") or claims.get("cognito:groups")),
                principal=str(identity.get("sub") or claims.get("sub") or ""),
            )
        if identity.get("userArn") or identity.get("accountId"):
            return cls.operator(str(identity.get("userArn") or identity.get("accountId")))
        raise Forbidden("the caller's identity is not one this API knows", code="FORBIDDEN")


def _groups(raw: Any) -> tuple[str, ...]:
    """`cognito:groups` as the authorizer passes it (JSON text) or AppSync does (a list)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except ValueError:
            raw = [part for part in raw.split(",") if part]
    if isinstance(raw, list):
        return tuple(str(group) for group in raw)
    return ()


def allowed_kinds(operation_id: str, api: str) -> frozenset[str]:
    """The caller kinds the catalogue allows for the operation on `api` (`rest` or `graphql`)."""
    callers = OPERATIONS[operation_id].spec.get("callers", {}).get(api, ())
    return frozenset(_ALIASES.get(kind, kind) for kind in callers)


def authorize(operation_id: str, api: str, caller: Caller) -> Caller:
    """`caller` if its kind may call the operation on `api`, else 403 FORBIDDEN (the gateway
    checks the same per method; this is the runtime's own check, for every route and field).

    An operation open to token holders is open to anyone: its method has no security, and the
    resume token in its body is the credential, which its handler checks."""
    kinds = allowed_kinds(operation_id, api)
    if TOKEN in kinds:
        return caller
    if caller.kind not in kinds:
        raise Forbidden(f"{operation_id} is not open to a {caller.kind} caller", code="FORBIDDEN")
    return caller
