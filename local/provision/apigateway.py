"""API Gateway REST pieces, recorded in the registry only.

`local.apigw` serves them: moto's API Gateway cannot proxy to Lambda.
"""

from __future__ import annotations

import secrets

from local.provision.context import Args, Context, auto_name, json_or_yaml, random_id
from local.pulumi_mocks import unsecret
from local.registry import ApiKeyRecord, RestApiRecord


def rest_api(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    api_id = random_id()
    body = json_or_yaml(i["body"]) if i.get("body") else {"paths": {}}
    name = i.get("name") or args.name
    with ctx.lock:
        ctx.registry.rest_apis[api_id] = RestApiRecord(api_id, name, body)
    return api_id, {
        **i,
        "name": name,
        "rootResourceId": random_id(),
        "arn": f"arn:aws:apigateway:{ctx.region}::/restapis/{api_id}",
        "executionArn": ctx.arn("execute-api", api_id),
        "createdDate": "2024-01-01T00:00:00Z",
    }


def deployment(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    api_id = i.get("restApi")
    return random_id(6), {
        **i,
        "executionArn": ctx.arn("execute-api", f"{api_id}/"),
        "createdDate": "2024-01-01T00:00:00Z",
    }


def stage(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    api_id, stage = i["restApi"], i["stageName"]
    with ctx.lock:
        ctx.registry.stages[stage] = api_id
    return f"ags-{api_id}-{stage}", {
        **i,
        "invokeUrl": f"{ctx.base_url}/{stage}",
        "executionArn": ctx.arn("execute-api", f"{api_id}/{stage}"),
        "arn": f"arn:aws:apigateway:{ctx.region}::/restapis/{api_id}/stages/{stage}",
    }


def api_key(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    key_id = random_id()
    value = unsecret(i.get("value")) or secrets.token_urlsafe(30)[:40]
    name = i.get("name") or auto_name(args.name)
    with ctx.lock:
        ctx.registry.api_keys[key_id] = ApiKeyRecord(value=value, enabled=bool(i.get("enabled", True)), name=name)
    return key_id, {
        **i,
        "name": name,
        "value": value,
        "arn": f"arn:aws:apigateway:{ctx.region}::/apikeys/{key_id}",
        "createdDate": "2024-01-01T00:00:00Z",
    }


def usage_plan(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    plan_id = random_id(6)
    stages = [(s["apiId"], s["stage"]) for s in i.get("apiStages") or []]
    with ctx.lock:
        ctx.registry.usage_plans[plan_id] = stages
    return plan_id, {
        **i,
        "name": i.get("name") or args.name,
        "arn": f"arn:aws:apigateway:{ctx.region}::/usageplans/{plan_id}",
    }


def usage_plan_key(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    with ctx.lock:
        ctx.registry.usage_plan_keys.append((i["usagePlanId"], i["keyId"]))
        key = ctx.registry.api_keys.get(i["keyId"])
    return i["keyId"], {**i, "name": key.name if key else "", "value": key.value if key else ""}


HANDLERS = {
    "aws:apigateway/restApi:RestApi": rest_api,
    "aws:apigateway/deployment:Deployment": deployment,
    "aws:apigateway/stage:Stage": stage,
    "aws:apigateway/apiKey:ApiKey": api_key,
    "aws:apigateway/usagePlan:UsagePlan": usage_plan,
    "aws:apigateway/usagePlanKey:UsagePlanKey": usage_plan_key,
}
