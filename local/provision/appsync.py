"""AppSync APIs, keys, data sources and resolvers, recorded in the registry only.

`local.appsync` serves them: moto has no AppSync data plane.
"""

from __future__ import annotations

from local.provision.context import Args, Context, random_id
from local.registry import AppSyncKeyRecord, DataSourceRecord, GraphqlApiRecord, ResolverRecord, UserPoolAuth


def graphql_api(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    api_id = random_id(26)
    name = i.get("name") or args.name
    uris = {
        "GRAPHQL": f"{ctx.base_url}/graphql",
        "REALTIME": ctx.base_url.replace("http://", "ws://", 1) + "/graphql/realtime",
    }
    with ctx.lock:
        ctx.registry.graphql_apis[api_id] = GraphqlApiRecord(
            name=name,
            schema=i.get("schema") or "",
            authentication_type=i.get("authenticationType", "API_KEY"),
            additional=[p.get("authenticationType") for p in i.get("additionalAuthenticationProviders") or []],
            uris=uris,
            query_depth_limit=i.get("queryDepthLimit"),
            user_pool=_user_pool(i),
        )
    return api_id, {**i, "name": name, "arn": ctx.arn("appsync", f"apis/{api_id}"), "uris": uris}


def _user_pool(inputs: dict) -> UserPoolAuth | None:
    """The Cognito mode's pool, as the default or an additional provider."""
    providers = [inputs, *(inputs.get("additionalAuthenticationProviders") or [])]
    for provider in providers:
        config = provider.get("userPoolConfig")
        if provider.get("authenticationType") == "AMAZON_COGNITO_USER_POOLS" and config:
            return UserPoolAuth(config["userPoolId"], config.get("appIdClientRegex"))
    return None


def appsync_key(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    key = ctx.stable(f"appsync-key:{args.name}", lambda: f"da2-{random_id(26)}")
    with ctx.lock:
        ctx.registry.appsync_keys[key] = AppSyncKeyRecord(api_id=i["apiId"], expires=i.get("expires"))
    return f"{i['apiId']}:{key}", {**i, "key": key}


def data_source(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    record = DataSourceRecord(
        type=i["type"],
        function_arn=(i.get("lambdaConfig") or {}).get("functionArn"),
        service_role_arn=i.get("serviceRoleArn"),
    )
    with ctx.lock:
        ctx.registry.data_sources[(i["apiId"], i["name"])] = record
    arn = ctx.arn("appsync", f"apis/{i['apiId']}/datasources/{i['name']}")
    return f"{i['apiId']}-{i['name']}", {**i, "arn": arn}


def resolver(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    with ctx.lock:
        ctx.registry.resolvers[(i["apiId"], i["type"], i["field"])] = ResolverRecord(
            data_source=i.get("dataSource", ""), code=i.get("code")
        )
    arn = ctx.arn("appsync", f"apis/{i['apiId']}/types/{i['type']}/resolvers/{i['field']}")
    return f"{i['apiId']}-{i['type']}-{i['field']}", {**i, "arn": arn}


HANDLERS = {
    "aws:appsync/graphQLApi:GraphQLApi": graphql_api,
    "aws:appsync/apiKey:ApiKey": appsync_key,
    "aws:appsync/dataSource:DataSource": data_source,
    "aws:appsync/resolver:Resolver": resolver,
}
