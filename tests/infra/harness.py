"""Run the real `__main__.py` for one stage under Pulumi mocks and print what it declared, as JSON.

The mock runtime plumbing (running the program, config, secrets, provider calls) is
`local.pulumi_mocks`, shared with the local stack; this module owns only what the tests record.

Why a subprocess: Pulumi's runtime state (settings, root stack, config) is process-global, so two
stages cannot be planned in one interpreter. `python -m tests.infra.harness dev` prints one JSON
object `{"stage", "config", "resources": [...], "outputs": {...}}` on stdout; the infra tests load
it once per stage (tests/infra/conftest.py).

The mocks answer like the AWS provider does (ARNs, names, `invokeArn`, `executionArn`,
`invokeUrl`, API key `value`, table `streamArn`, generated bucket names ...), so every
`Output.apply` in the program runs on realistic values and the tests can check the ARNs that
end up in policies, the state-machine definition and the RestApi body.
"""

from __future__ import annotations

import hashlib
import json
import string
import sys
import threading
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor

from local.pulumi_mocks import (
    ACCOUNT_ID,
    config_value,
    is_wrapped_secret,
    provider_call_answer,
    resolve,
    run_program,
    unsecret,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "ai-workflows"
STAGES = ("dev", "prod")


def stage_config_file(stage: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stage}.yaml"


def raw_stage_config(stage: str) -> dict[str, str]:
    """`Pulumi.<stage>.yaml` as the engine hands it to the program: `namespace:key` -> string."""
    document = yaml.safe_load(stage_config_file(stage).read_text()) or {}
    config = {key: config_value(value) for key, value in (document.get("config") or {}).items()}
    return {key: value for key, value in config.items() if value is not None}


def _random(seed: str, length: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    """Provider-generated text (ids, suffixes, key values) that looks random but is a function of `seed`.

    Deterministic, so the same logical resource gets the same id in every stage and every run:
    the tests can diff dev against prod, and a failure reproduces.
    """
    digest = hashlib.sha256(seed.encode()).digest()
    while len(digest) < length:
        digest += hashlib.sha256(digest).digest()
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:length])


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers every resource with provider-like outputs and records what the program declared."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = {key: unsecret(value) for key, value in args.inputs.items()}
        resource_id, outputs = self._outputs(args.typ, args.name, inputs)
        state = {**outputs, **inputs}  # like the provider: what the program set wins
        with self._lock:
            key = f"{args.typ}::{args.name}"
            if key in self.records:
                raise RuntimeError(f"two resources named {key}: the harness keys records by type and name")
            self.records[key] = {
                "type": args.typ,
                "name": args.name,
                "custom": bool(args.custom),
                "id": resource_id,
                "inputs": inputs,
                "outputs": state,
            }
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        # The program makes no provider calls today; answer the usual ones anyway, as the local stack does.
        return provider_call_answer(args.token, self.region) or {}

    def _outputs(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(id, extra outputs) the AWS provider would report for this resource."""
        region, account = self.region, ACCOUNT_ID
        seed = f"{typ}::{name}"
        physical = inputs.get("name") or f"{name}-{_random(seed, 7)}"
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            return physical, {"name": physical, "arn": f"arn:aws:logs:{region}:{account}:log-group:{physical}"}
        if typ == "aws:iam/role:Role":
            return physical, {
                "name": physical,
                "arn": f"arn:aws:iam::{account}:role/{physical}",
                "uniqueId": f"AROA{_random(seed, 17, string.ascii_uppercase + string.digits)}",
            }
        if typ == "aws:iam/rolePolicy:RolePolicy":
            return f"{inputs.get('role')}:{physical}", {"name": physical}
        if typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{region}:{account}:function:{physical}"
            version = "1" if inputs.get("publish") else "$LATEST"  # as `publish` makes Lambda do
            return physical, {
                "name": physical,
                "arn": arn,
                "qualifiedArn": f"{arn}:{version}",
                "version": version,
                "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
                "qualifiedInvokeArn": (
                    f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}:{version}/invocations"
                ),
            }
        if typ == "aws:cognito/userPool:UserPool":
            pool = f"{region}_{_random(seed, 9, string.ascii_letters + string.digits)}"
            return pool, {
                "name": physical,
                "arn": f"arn:aws:cognito-idp:{region}:{account}:userpool/{pool}",
                "endpoint": f"cognito-idp.{region}.amazonaws.com/{pool}",
            }
        if typ == "aws:cognito/userPoolClient:UserPoolClient":
            return _random(seed, 26), {"name": physical}
        if typ == "aws:lambda/layerVersion:LayerVersion":
            layer = f"arn:aws:lambda:{region}:{account}:layer:{inputs['layerName']}"
            return f"{layer}:1", {"arn": f"{layer}:1", "layerArn": layer, "version": "1"}
        if typ == "aws:lambda/permission:Permission":
            statement = inputs.get("statementId") or f"{name}-{_random(seed, 7)}"
            return statement, {"statementId": statement}
        if typ == "aws:dynamodb/table:Table":
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{physical}"
            extra: dict[str, Any] = {"name": physical, "arn": arn}
            if inputs.get("streamEnabled"):
                label = "2024-01-01T00:00:00.000"
                extra |= {"streamArn": f"{arn}/stream/{label}", "streamLabel": label}
            return physical, extra
        if typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or f"{inputs.get('bucketPrefix', name + '-')}{_random(seed, 20)}"
            return bucket, {
                "bucket": bucket,
                "arn": f"arn:aws:s3:::{bucket}",
                "bucketDomainName": f"{bucket}.s3.amazonaws.com",
                "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
                "region": region,
            }
        if typ == "aws:sfn/stateMachine:StateMachine":
            arn = f"arn:aws:states:{region}:{account}:stateMachine:{physical}"
            return arn, {"name": physical, "arn": arn, "status": "ACTIVE"}
        if typ == "aws:apigateway/restApi:RestApi":
            api_id = _random(seed, 10)
            return api_id, {
                "name": physical,
                "arn": f"arn:aws:apigateway:{region}::/restapis/{api_id}",
                "executionArn": f"arn:aws:execute-api:{region}:{account}:{api_id}",
                "rootResourceId": _random(seed + ":root", 10),
            }
        if typ == "aws:apigateway/deployment:Deployment":
            return _random(seed, 6), {}
        if typ == "aws:apigateway/stage:Stage":
            api_id, stage_name = inputs["restApi"], inputs["stageName"]
            return f"ags-{api_id}-{stage_name}", {
                "arn": f"arn:aws:apigateway:{region}::/restapis/{api_id}/stages/{stage_name}",
                "executionArn": f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage_name}",
                # The provider reports the stage URL without a trailing slash.
                "invokeUrl": f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage_name}",
            }
        if typ == "aws:apigateway/apiKey:ApiKey":
            key_id = _random(seed, 10)
            return key_id, {
                "name": physical,
                "arn": f"arn:aws:apigateway:{region}::/apikeys/{key_id}",
                "value": inputs.get("value") or _random(seed, 40, string.ascii_letters + string.digits),
            }
        if typ == "aws:appsync/graphQLApi:GraphQLApi":
            api_id, host = _random(seed, 26), _random(seed + ":host", 26)
            return api_id, {
                "arn": f"arn:aws:appsync:{region}:{account}:apis/{api_id}",
                "uris": {
                    "GRAPHQL": f"https://{host}.appsync-api.{region}.amazonaws.com/graphql",
                    "REALTIME": f"wss://{host}.appsync-realtime-api.{region}.amazonaws.com/graphql",
                },
            }
        if typ == "aws:appsync/apiKey:ApiKey":
            key_id = f"da2-{_random(seed, 26)}"
            return f"{inputs.get('apiId')}:{key_id}", {"key": key_id}
        if typ == "aws:appsync/dataSource:DataSource":
            api_id = inputs.get("apiId")
            return f"{api_id}-{physical}", {
                "name": physical,
                "arn": f"arn:aws:appsync:{region}:{account}:apis/{api_id}/datasources/{physical}",
            }
        if typ == "aws:appsync/resolver:Resolver":
            api_id, type_name, field = inputs.get("apiId"), inputs.get("type"), inputs.get("field")
            return f"{api_id}-{type_name}-{field}", {
                "arn": f"arn:aws:appsync:{region}:{account}:apis/{api_id}/types/{type_name}/resolvers/{field}"
            }
        if typ == "aws:appsync/function:Function":
            api_id, function_id = inputs.get("apiId"), _random(seed, 26)
            return f"{api_id}-{function_id}", {
                "functionId": function_id,
                "arn": f"arn:aws:appsync:{region}:{account}:apis/{api_id}/functions/{function_id}",
            }
        if typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
            return url, {"name": physical, "arn": f"arn:aws:sqs:{region}:{account}:{physical}", "url": url}
        if typ == "aws:sns/topic:Topic":
            arn = f"arn:aws:sns:{region}:{account}:{physical}"
            return arn, {"name": physical, "arn": arn}
        if typ == "aws:lambda/eventSourceMapping:EventSourceMapping":
            uuid = "-".join(_random(seed, n, "0123456789abcdef") for n in (8, 4, 4, 4, 12))
            return uuid, {"uuid": uuid, "arn": f"arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}"}
        if typ == "aws:cloudwatch/eventRule:EventRule":
            return physical, {"name": physical, "arn": f"arn:aws:events:{region}:{account}:rule/{physical}"}
        if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            return physical, {"name": physical, "arn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{physical}"}
        if typ == "aws:apigateway/usagePlan:UsagePlan":
            plan_id = _random(seed, 6)
            return plan_id, {"name": physical, "arn": f"arn:aws:apigateway:{region}::/usageplans/{plan_id}"}
        return f"{name}-id", {}


class RecordingMonitor(MockMonitor):
    """Adds what `Mocks` never sees: the parent and the resource options the tests check."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.options: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            with self._lock:
                self.options[f"{request.type}::{request.name}"] = {
                    "urn": response.urn,
                    "parent": request.parent or None,
                    "retainOnDelete": bool(request.retainOnDelete),
                    "protect": bool(request.protect),
                    "dependsOn": sorted(request.dependencies),
                    "replaceOnChanges": list(request.replaceOnChanges),
                }
        return response


def _jsonable(value: Any) -> Any:
    """Resolved inputs as JSON: secrets unwrapped, archives and assets a small description of themselves."""
    if is_wrapped_secret(value):
        return _jsonable(value.get("value"))  # a secret nested deeper than the top-level inputs
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"__pulumi__": type(value).__name__, "path": value.path}
    if isinstance(value, pulumi.AssetArchive):
        return {"__pulumi__": "AssetArchive", "assets": {k: _jsonable(v) for k, v in value.assets.items()}}
    if isinstance(value, pulumi.StringAsset):
        return {"__pulumi__": "StringAsset", "text": value.text}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return {"__pulumi__": type(value).__name__, "repr": repr(value)}


def _resolve_export(value: Any) -> dict[str, Any]:
    resolved, secret = resolve(value)
    return {"value": _jsonable(resolved), "secret": secret}


def run_stage(stage: str) -> dict[str, Any]:
    """Plan `__main__.py` for `stage` under the mocks; everything it declared, resolved."""
    raw = raw_stage_config(stage)
    mocks = RecordingMocks(region=raw.get("aws:region", "us-east-1"))
    monitor = RecordingMonitor(mocks)
    exported = run_program(REPO_ROOT / "__main__.py", PROJECT, stage, raw, mocks, monitor=monitor)
    outputs = {name: _resolve_export(value) for name, value in exported.items()}
    urn_to_key = {options["urn"]: key for key, options in monitor.options.items()}
    resources = []
    for key, record in mocks.records.items():
        options = monitor.options.get(key, {})
        parent = options.get("parent")
        resources.append(
            {
                **{k: _jsonable(v) for k, v in record.items()},
                **options,
                "dependsOn": [urn_to_key.get(urn, urn) for urn in options.get("dependsOn", [])],
                "parent": urn_to_key.get(parent, parent) if parent else None,
            }
        )
    return {"stage": stage, "config": raw, "resources": resources, "outputs": outputs}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m tests.infra.harness <stage>  (one of {', '.join(STAGES)})", file=sys.stderr)
        return 2
    result = run_stage(argv[0])
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
