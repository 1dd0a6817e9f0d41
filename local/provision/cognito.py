"""Cognito user pools and their app clients, created in moto's cognito-idp.

The pool is real in the embedded AWS: an operator creates users there (`admin_create_user`,
`admin_set_user_password`) and signs them in (`admin_initiate_auth`, ADMIN_USER_PASSWORD_AUTH);
moto signs their ID tokens (with `custom:*` attributes and `cognito:groups`) with the key it
serves at `{awsEndpointUrl}/{poolId}/.well-known/jwks.json`, which the REST authorizer and the
local AppSync read, as API Gateway and AppSync read the pool's JWKS in the cloud.
"""

from __future__ import annotations

from typing import Any

from local.provision.context import Args, Context
from local.registry import UserPoolRecord


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
    pool_id = pool["Id"]
    with ctx.lock:
        ctx.registry.user_pools[pool_id] = UserPoolRecord(
            jwks_url=f"{ctx.endpoint_url.rstrip('/')}/{pool_id}/.well-known/jwks.json"
        )
    return pool_id, {
        **i,
        "name": name,
        "arn": pool["Arn"],
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
    return client["ClientId"], {**i, "name": name, "clientSecret": client.get("ClientSecret", "")}


HANDLERS = {
    "aws:cognito/userPool:UserPool": user_pool,
    "aws:cognito/userPoolClient:UserPoolClient": user_pool_client,
}
