"""Cognito user pools and their app clients, created in moto's cognito-idp.

The pool is real in the embedded AWS: an operator creates users there (`admin_create_user`,
`admin_set_user_password`) and signs them in (`admin_initiate_auth`, ADMIN_USER_PASSWORD_AUTH);
moto signs their ID tokens (with `custom:*` attributes and `cognito:groups`) with the key it
serves at `{awsEndpointUrl}/{poolId}/.well-known/jwks.json`, which the REST authorizer and the
local AppSync read, as API Gateway and AppSync read the pool's JWKS in the cloud.

The pool and client ids are kept across restarts of a persisted stack (`Context.stable`; moto
generates new ones, so the created pool is put under the kept id), so a client's configuration
and the tokens it holds stay valid; `local.persistence` puts the pool's users back.
"""

from __future__ import annotations

from typing import Any

from local.provision.context import Args, Context
from local.registry import ACCOUNT_ID, UserPoolRecord


def _backend(ctx: Context) -> Any:
    from moto.cognitoidp.models import cognitoidp_backends

    return cognitoidp_backends[ACCOUNT_ID][ctx.region]


def _kept_pool_id(ctx: Context, name: str, created: str) -> str:
    """The pool's id from an earlier run of this stack (moto's new pool moved under it), else `created`."""
    kept = ctx.stable(f"user-pool:{name}", lambda: created)
    if kept != created:
        pools = _backend(ctx).user_pools
        pool = pools.pop(created)
        pool.id, pool.arn = kept, pool.arn.replace(created, kept)
        pools[kept] = pool
    return kept


def _kept_client_id(ctx: Context, name: str, pool_id: str, created: str) -> str:
    kept = ctx.stable(f"user-pool-client:{name}", lambda: created)
    if kept != created:
        clients = _backend(ctx).user_pools[pool_id].clients
        client = clients.pop(created)
        client.id = kept
        clients[kept] = client
    return kept


def _schema(attribute: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Name": attribute["name"],
        "AttributeDataType": attribute.get("attributeDataType", "String"),
        "Mutable": bool(attribute.get("mutable", True)),
        "DeveloperOnlyAttribute": bool(attribute.get("developerOnlyAttribute", False)),
    }
    limits = attribute.get("stringAttributeConstraints")
    if limits:
        entry["StringAttributeConstraints"] = {
            {"minLength": "MinLength", "maxLength": "MaxLength"}[k]: str(v) for k, v in limits.items() if v is not None
        }
    return entry


def user_pool(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or args.name
    request: dict[str, Any] = {"PoolName": name, "Schema": [_schema(a) for a in i.get("schemas") or []]}
    admin = i.get("adminCreateUserConfig") or {}
    if admin:
        request["AdminCreateUserConfig"] = {"AllowAdminCreateUserOnly": bool(admin.get("allowAdminCreateUserOnly"))}
    pool = ctx.client("cognito-idp").create_user_pool(**request)["UserPool"]
    pool_id = _kept_pool_id(ctx, args.name, pool["Id"])
    with ctx.lock:
        ctx.registry.user_pools[pool_id] = UserPoolRecord(
            jwks_url=f"{ctx.endpoint_url.rstrip('/')}/{pool_id}/.well-known/jwks.json"
        )
    return pool_id, {
        **i,
        "name": name,
        "arn": pool["Arn"].replace(pool["Id"], pool_id),
        "endpoint": f"cognito-idp.{ctx.region}.amazonaws.com/{pool_id}",
    }


def user_pool_client(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or args.name
    request: dict[str, Any] = {
        "UserPoolId": i["userPoolId"],
        "ClientName": name,
        "GenerateSecret": bool(i.get("generateSecret", False)),
    }
    for key, field in (
        ("explicitAuthFlows", "ExplicitAuthFlows"),
        ("readAttributes", "ReadAttributes"),
        ("writeAttributes", "WriteAttributes"),
    ):
        if i.get(key):
            request[field] = list(i[key])
    client = ctx.client("cognito-idp").create_user_pool_client(**request)["UserPoolClient"]
    client_id = _kept_client_id(ctx, args.name, i["userPoolId"], client["ClientId"])
    return client_id, {**i, "name": name, "clientSecret": client.get("ClientSecret", "")}


HANDLERS = {
    "aws:cognito/userPool:UserPool": user_pool,
    "aws:cognito/userPoolClient:UserPoolClient": user_pool_client,
}
