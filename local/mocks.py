"""Pulumi mocks that create each declared resource in the embedded AWS and remember what was declared.

`pulumi.runtime.set_mocks` hands every resource registration of the real program to
`LocalAwsMocks.new_resource` with resolved, camelCased inputs. Where moto implements the
service (DynamoDB, S3, IAM, CloudWatch Logs, Lambda, Step Functions, EventBridge) the resource
is created there through boto3, so handler code and the state machine find it; the API Gateway
pieces are only recorded in `Registry`, because the local stack serves REST itself
(`local.apigw`). Outputs mimic what the provider returns (arn, name, id, invokeArn, ...).
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import string
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pulumi
import yaml
from botocore.config import Config

from local import sqs_event_source

log = logging.getLogger("local.mocks")

ACCOUNT_ID = "123456789012"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass
class RestApiRecord:
    id: str
    name: str
    body: dict


@dataclass
class Registry:
    """What the program declared that the local servers need (filled by the mocks, read by apigw)."""

    functions: dict[str, dict] = field(default_factory=dict)  # name -> {arn, handler, env, timeout, ...}
    rest_apis: dict[str, RestApiRecord] = field(default_factory=dict)  # id -> record
    stages: dict[str, str] = field(default_factory=dict)  # stage name -> rest api id
    api_keys: dict[str, dict] = field(default_factory=dict)  # key id -> {value, enabled, name}
    usage_plans: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # id -> [(apiId, stage)]
    usage_plan_keys: list[tuple[str, str]] = field(default_factory=list)  # (planId, keyId)
    resources: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, id)
    # AppSync (served by local.appsync): api id -> {name, schema, authenticationType, additional, uris}
    graphql_apis: dict[str, dict] = field(default_factory=dict)
    appsync_keys: dict[str, dict] = field(default_factory=dict)  # key value -> {apiId, expires}
    data_sources: dict[tuple[str, str], dict] = field(default_factory=dict)  # (apiId, name) -> {type, functionArn}
    resolvers: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # (apiId, type, field) -> inputs

    def valid_api_key(self, value: str | None, api_id: str, stage: str) -> bool:
        """True when `value` is an enabled key attached, through a usage plan, to this API stage."""
        if not value:
            return False
        key_ids = {kid for kid, key in self.api_keys.items() if key["value"] == value and key["enabled"]}
        for plan_id, key_id in self.usage_plan_keys:
            if key_id in key_ids and (api_id, stage) in self.usage_plans.get(plan_id, []):
                return True
        return False


def archive_to_zip(archive: Any) -> bytes:
    """Zip a Pulumi archive as the engine would: paths relative to the folder root, fixed timestamps.

    `__pycache__` folders and `.pyc` files are left out (they are build litter, not code).
    """
    if isinstance(archive, pulumi.FileArchive) and os.path.isfile(archive.path):
        with open(archive.path, "rb") as handle:  # an already built .zip
            return handle.read()
    entries: dict[str, bytes] = {}
    _collect(archive, "", entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, entries[name])
    return buffer.getvalue()


def _collect(item: Any, prefix: str, entries: dict[str, bytes]) -> None:
    if isinstance(item, pulumi.FileArchive):
        root = item.path
        if os.path.isfile(root):
            with zipfile.ZipFile(root) as archive:
                for name in archive.namelist():
                    if not name.endswith("/"):
                        entries[prefix + name] = archive.read(name)
            return
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in files:
                if name.endswith(".pyc"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                with open(path, "rb") as handle:
                    entries[prefix + rel] = handle.read()
    elif isinstance(item, pulumi.AssetArchive):
        for name, sub in item.assets.items():
            if isinstance(sub, pulumi.Archive):
                _collect(sub, f"{prefix}{name}/", entries)
            else:
                _collect(sub, prefix + name, entries)
    elif isinstance(item, pulumi.FileAsset):
        with open(item.path, "rb") as handle:
            entries[prefix] = handle.read()
    elif isinstance(item, pulumi.StringAsset):
        entries[prefix] = item.text.encode()
    else:
        raise ValueError(f"cannot package {type(item).__name__} for the local Lambda runtime")


def _auto_name(name: str, lower: bool = False) -> str:
    """Pulumi's auto-naming: the logical name plus a hyphen and 7 random characters."""
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(7))
    value = f"{name}-{suffix}"
    return value.lower() if lower else value


def _random_id(length: int = 10) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def _json_or_yaml(text: str | dict) -> dict:
    if isinstance(text, dict):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return yaml.safe_load(text)


class LocalAwsMocks(pulumi.runtime.Mocks):
    """Create resources in moto and answer with provider-like outputs; record what the servers need."""

    def __init__(self, endpoint_url: str, region: str, base_url: str, registry: Registry | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.base_url = base_url.rstrip("/")
        self.registry = registry or Registry()
        self._lock = threading.Lock()
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        )
        config = Config(retries={"max_attempts": 1})
        self._clients = {
            name: session.client(name, endpoint_url=endpoint_url, config=config)
            for name in ("dynamodb", "s3", "iam", "logs", "lambda", "stepfunctions", "events", "sqs")
        }
        self._handlers: dict[str, Callable[[pulumi.runtime.MockResourceArgs], tuple[str, dict]]] = {
            "aws:dynamodb/table:Table": self._table,
            "aws:s3/bucket:Bucket": self._bucket,
            "aws:s3/bucketV2:BucketV2": self._bucket,
            "aws:iam/role:Role": self._role,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._role_policy_attachment,
            "aws:cloudwatch/logGroup:LogGroup": self._log_group,
            "aws:lambda/layerVersion:LayerVersion": self._layer_version,
            "aws:lambda/function:Function": self._function,
            "aws:lambda/permission:Permission": self._permission,
            "aws:lambda/eventSourceMapping:EventSourceMapping": self._event_source_mapping,
            "aws:lambda/invocation:Invocation": self._invocation,
            "aws:sfn/stateMachine:StateMachine": self._state_machine,
            "aws:cloudwatch/eventRule:EventRule": self._event_rule,
            "aws:cloudwatch/eventTarget:EventTarget": self._event_target,
            "aws:apigateway/restApi:RestApi": self._rest_api,
            "aws:apigateway/deployment:Deployment": self._deployment,
            "aws:apigateway/stage:Stage": self._stage,
            "aws:apigateway/apiKey:ApiKey": self._api_key,
            "aws:apigateway/usagePlan:UsagePlan": self._usage_plan,
            "aws:apigateway/usagePlanKey:UsagePlanKey": self._usage_plan_key,
            "aws:sqs/queue:Queue": self._queue,
            "aws:appsync/graphQLApi:GraphQLApi": self._graphql_api,
            "aws:appsync/apiKey:ApiKey": self._appsync_key,
            "aws:appsync/dataSource:DataSource": self._data_source,
            "aws:appsync/resolver:Resolver": self._resolver,
        }

    def client(self, service: str) -> Any:
        return self._clients[service]

    # -- Mocks API -------------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if not args.custom:  # a ComponentResource: nothing to create
            return f"{args.name}_id", dict(args.inputs)
        handler = self._handlers.get(args.typ)
        try:
            if handler is None:
                log.debug("%s has no local implementation; answering with its inputs", args.typ)
                resource_id, outputs = self._generic(args)
            else:
                resource_id, outputs = handler(args)
        except Exception:
            log.exception("creating %s %r locally failed", args.typ, args.name)
            raise
        with self._lock:
            self.registry.resources.append((args.typ, args.name, resource_id))
        log.info("  + %-40s %s", args.typ.split(":")[-1] if handler else args.typ, resource_id)
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:  # type: ignore[override]
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/local",
                "userId": "AIDALOCALSTACKUSER",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getRegion:getRegion":
            return {
                "name": self.region,
                "region": self.region,
                "id": self.region,
                "description": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
            }
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            document = _policy_document(args.args)
            return {"json": document, "minifiedJson": document, "id": str(abs(hash(document)))}
        log.debug("no local answer for call %s; returning its arguments", token)
        return dict(args.args)

    # -- helpers ---------------------------------------------------------------------------------

    def _arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{ACCOUNT_ID}:{resource}"

    def _generic(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        name = args.inputs.get("name") or args.name
        service = args.typ.split(":")[1].split("/")[0]
        resource_id = f"{args.name}-{_random_id(7)}"
        return resource_id, {**args.inputs, "arn": self._arn(service, f"{name}"), "name": name}

    # -- DynamoDB, S3, IAM, Logs -----------------------------------------------------------------

    def _table(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        name = i.get("name") or _auto_name(args.name)
        if i.get("keySchemas"):  # the newer form that replaces hashKey/rangeKey
            keys = [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in i["keySchemas"]]
        else:
            keys = [{"AttributeName": i["hashKey"], "KeyType": "HASH"}]
            if i.get("rangeKey"):
                keys.append({"AttributeName": i["rangeKey"], "KeyType": "RANGE"})
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": keys,
            "AttributeDefinitions": [
                {"AttributeName": a["name"], "AttributeType": a["type"]} for a in i.get("attributes", [])
            ],
        }
        provisioned = i.get("billingMode", "PROVISIONED") == "PROVISIONED"
        throughput = {
            "ReadCapacityUnits": int(i.get("readCapacity") or 1),
            "WriteCapacityUnits": int(i.get("writeCapacity") or 1),
        }
        request["BillingMode"] = "PROVISIONED" if provisioned else "PAY_PER_REQUEST"
        if provisioned:
            request["ProvisionedThroughput"] = throughput
        gsis = []
        for index in i.get("globalSecondaryIndexes") or []:
            if index.get("keySchemas"):
                schema = [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in index["keySchemas"]]
            else:
                schema = [{"AttributeName": index["hashKey"], "KeyType": "HASH"}]
                if index.get("rangeKey"):
                    schema.append({"AttributeName": index["rangeKey"], "KeyType": "RANGE"})
            projection: dict[str, Any] = {"ProjectionType": index.get("projectionType", "ALL")}
            if index.get("nonKeyAttributes"):
                projection["NonKeyAttributes"] = index["nonKeyAttributes"]
            gsi: dict[str, Any] = {"IndexName": index["name"], "KeySchema": schema, "Projection": projection}
            if provisioned:
                gsi["ProvisionedThroughput"] = throughput
            gsis.append(gsi)
        if gsis:
            request["GlobalSecondaryIndexes"] = gsis
        lsis = []
        for index in i.get("localSecondaryIndexes") or []:
            projection = {"ProjectionType": index.get("projectionType", "ALL")}
            if index.get("nonKeyAttributes"):
                projection["NonKeyAttributes"] = index["nonKeyAttributes"]
            lsis.append(
                {
                    "IndexName": index["name"],
                    "Projection": projection,
                    "KeySchema": [
                        keys[0],
                        {"AttributeName": index["rangeKey"], "KeyType": "RANGE"},
                    ],
                }
            )
        if lsis:
            request["LocalSecondaryIndexes"] = lsis
        if i.get("streamEnabled"):
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": i.get("streamViewType", "NEW_AND_OLD_IMAGES"),
            }
        ddb = self.client("dynamodb")
        table = ddb.create_table(**request)["TableDescription"]
        ttl = i.get("ttl") or {}
        if ttl.get("enabled") and ttl.get("attributeName"):
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]}
            )
        if (i.get("pointInTimeRecovery") or {}).get("enabled"):
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        outputs = {**i, "name": name, "arn": table["TableArn"], "billingMode": request["BillingMode"]}
        if table.get("LatestStreamArn"):
            outputs["streamArn"] = table["LatestStreamArn"]
            outputs["streamLabel"] = table.get("LatestStreamLabel", "")
        return name, outputs

    def _bucket(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        name = i.get("bucket") or _auto_name(args.name, lower=True)
        s3 = self.client("s3")
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        return name, {
            **i,
            "bucket": name,
            "arn": f"arn:aws:s3:::{name}",
            "region": self.region,
            "bucketDomainName": f"{name}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
        }

    def _role(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        name = i.get("name") or _auto_name(args.name)
        policy = i.get("assumeRolePolicy") or "{}"
        request = {
            "RoleName": name,
            "AssumeRolePolicyDocument": policy if isinstance(policy, str) else json.dumps(policy),
            "Path": i.get("path", "/"),
        }
        if i.get("description"):
            request["Description"] = i["description"]
        role = self.client("iam").create_role(**request)["Role"]
        for inline in i.get("inlinePolicies") or []:
            if inline.get("name") and inline.get("policy"):
                self.client("iam").put_role_policy(
                    RoleName=name, PolicyName=inline["name"], PolicyDocument=inline["policy"]
                )
        for policy_arn in i.get("managedPolicyArns") or []:
            self._attach(name, policy_arn)
        return name, {
            **i,
            "name": name,
            "arn": role["Arn"],
            "uniqueId": role["RoleId"],
            "createDate": role["CreateDate"].isoformat(),
        }

    def _role_policy(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        role = str(i["role"]).rsplit("/", 1)[-1]  # a name, or an ARN when the program passed role.arn
        name = i.get("name") or _auto_name(args.name)
        policy = i["policy"] if isinstance(i["policy"], str) else json.dumps(i["policy"])
        self.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=policy)
        return f"{role}:{name}", {**i, "name": name, "role": role}

    def _attach(self, role: str, policy_arn: str) -> None:
        try:
            self.client("iam").attach_role_policy(RoleName=role, PolicyArn=policy_arn)
        except Exception as exc:  # moto only knows some AWS-managed policies; harmless locally
            log.debug("could not attach %s to %s in moto: %s", policy_arn, role, exc)

    def _role_policy_attachment(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        role = str(args.inputs["role"]).rsplit("/", 1)[-1]
        self._attach(role, args.inputs["policyArn"])
        return f"{role}-{_random_id(8)}", dict(args.inputs)

    def _log_group(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        name = i.get("name") or _auto_name(args.name)
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if i.get("retentionInDays"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(i["retentionInDays"]))
        return name, {**i, "name": name, "arn": self._arn("logs", f"log-group:{name}")}

    # -- Lambda ----------------------------------------------------------------------------------

    def _layer_version(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        # The layer's archive is built for the Lambda platform by an explicit step and does not
        # exist locally; the local interpreter's identical pins stand in for it. Never read it.
        i = args.inputs
        name = i.get("layerName") or args.name
        layer_arn = self._arn("lambda", f"layer:{name}")
        return f"{layer_arn}:1", {
            **i,
            "layerName": name,
            "layerArn": layer_arn,
            "arn": f"{layer_arn}:1",
            "version": "1",
            "createdDate": "2024-01-01T00:00:00.000+0000",
        }

    def _function(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        name = i.get("name") or _auto_name(args.name)
        code = archive_to_zip(i["code"])
        env = dict(((i.get("environment") or {}).get("variables")) or {})
        request: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": i.get("runtime", "python3.12"),
            "Role": i["role"],
            "Handler": i.get("handler", "index.handler"),
            "Code": {"ZipFile": code},
            "Timeout": int(i.get("timeout") or 3),
            "MemorySize": int(i.get("memorySize") or 128),
            "Environment": {"Variables": {k: str(v) for k, v in env.items()}},
            "Publish": bool(i.get("publish", False)),
        }
        if i.get("description"):
            request["Description"] = i["description"]
        created = self.client("lambda").create_function(**request)
        arn = created["FunctionArn"]
        version = created.get("Version", "$LATEST")
        with self._lock:
            self.registry.functions[name] = {
                "arn": arn,
                "handler": request["Handler"],
                "environment": request["Environment"]["Variables"],
                "timeout": request["Timeout"],
                "memorySize": request["MemorySize"],
                "runtime": request["Runtime"],
                "layers": list(i.get("layers") or []),
                "codeSize": len(code),
            }
        invoke = f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
        qualified = f"{arn}:{version}"
        return name, {
            **i,
            "name": name,
            "arn": arn,
            "invokeArn": invoke,
            "version": version,
            "qualifiedArn": qualified,
            "qualifiedInvokeArn": invoke.replace(arn, qualified),
            "codeSha256": created.get("CodeSha256", ""),
            "sourceCodeHash": created.get("CodeSha256", ""),
            "lastModified": created.get("LastModified", ""),
            "sourceCodeSize": len(code),
        }

    def _permission(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        statement = args.inputs.get("statementId") or _auto_name(args.name)
        return statement, {**args.inputs, "statementId": statement}

    def _invocation(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        """Invoke the function now, as `pulumi up` does; a function error fails the program run."""
        i = args.inputs
        answer = self.client("lambda").invoke(FunctionName=i["functionName"], Payload=i["input"].encode())
        result = answer["Payload"].read().decode()
        if answer.get("FunctionError"):
            raise RuntimeError(f"invocation {args.name} of {i['functionName']} failed: {result}")
        return f"{i['functionName']}_{_auto_name('invocation')}", {**i, "result": result}

    def _event_source_mapping(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        request: dict[str, Any] = {
            "EventSourceArn": i["eventSourceArn"],
            "FunctionName": i["functionName"],
            "Enabled": bool(i.get("enabled", True)),
        }
        if i.get("batchSize"):
            request["BatchSize"] = int(i["batchSize"])
        if i.get("startingPosition"):
            request["StartingPosition"] = i["startingPosition"]
        # Recorded by moto on the mapping and honoured by local.moto_glue's stream delivery.
        for src, dst, kind in (
            ("functionResponseTypes", "FunctionResponseTypes", list),
            ("bisectBatchOnFunctionError", "BisectBatchOnFunctionError", bool),
            ("maximumRetryAttempts", "MaximumRetryAttempts", int),
            ("maximumBatchingWindowInSeconds", "MaximumBatchingWindowInSeconds", int),
        ):
            if i.get(src) is not None:
                request[dst] = kind(i[src])  # Pulumi numbers arrive as floats
        on_failure = ((i.get("destinationConfig") or {}).get("onFailure") or {}).get("destinationArn")
        if on_failure:
            request["DestinationConfig"] = {"OnFailure": {"Destination": on_failure}}
        mapping = self.client("lambda").create_event_source_mapping(**request)
        if i["eventSourceArn"].startswith("arn:aws:sqs:"):  # polled by us, not inside moto's send_message
            sqs_event_source.start(
                sqs_event_source.SqsMapping(
                    uuid=mapping["UUID"],
                    queue_arn=i["eventSourceArn"],
                    function_arn=mapping["FunctionArn"],
                    batch_size=int(i.get("batchSize") or 10),
                    report_batch_item_failures="ReportBatchItemFailures" in (i.get("functionResponseTypes") or []),
                ),
                self.endpoint_url,
            )
        return mapping["UUID"], {
            **i,
            "uuid": mapping["UUID"],
            "functionArn": mapping["FunctionArn"],
            "state": mapping.get("State", "Enabled"),
            "arn": self._arn("lambda", f"event-source-mapping:{mapping['UUID']}"),
        }

    # -- Step Functions, EventBridge -------------------------------------------------------------

    def _state_machine(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        name = i.get("name") or _auto_name(args.name)
        request: dict[str, Any] = {
            "name": name,
            "definition": i["definition"],
            "roleArn": i["roleArn"],
            "type": i.get("type", "STANDARD"),
        }
        tracing = i.get("tracingConfiguration") or {}
        if "enabled" in tracing:
            request["tracingConfiguration"] = {"enabled": bool(tracing["enabled"])}
        created = self.client("stepfunctions").create_state_machine(**request)
        arn = created["stateMachineArn"]
        return arn, {
            **i,
            "name": name,
            "arn": arn,
            "status": "ACTIVE",
            "creationDate": created["creationDate"].isoformat(),
            "stateMachineVersionArn": "",
            "revisionId": "",
        }

    def _event_rule(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        name = i.get("name") or _auto_name(args.name)
        request: dict[str, Any] = {"Name": name, "State": i.get("state", "ENABLED")}
        for src, dst in (
            ("eventPattern", "EventPattern"),
            ("scheduleExpression", "ScheduleExpression"),
            ("description", "Description"),
            ("eventBusName", "EventBusName"),
        ):
            if i.get(src):
                request[dst] = i[src]
        arn = self.client("events").put_rule(**request)["RuleArn"]
        return name, {**i, "name": name, "arn": arn}

    def _event_target(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        target_id = i.get("targetId") or _auto_name(args.name)
        target: dict[str, Any] = {"Id": target_id, "Arn": i["arn"]}
        if i.get("input"):
            target["Input"] = i["input"]
        request: dict[str, Any] = {"Rule": i["rule"], "Targets": [target]}
        if i.get("eventBusName"):
            request["EventBusName"] = i["eventBusName"]
        self.client("events").put_targets(**request)
        return f"{i['rule']}-{target_id}", {**i, "targetId": target_id}

    # -- API Gateway (recorded; served by local.apigw) -------------------------------------------

    def _rest_api(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        api_id = _random_id()
        body = _json_or_yaml(i["body"]) if i.get("body") else {"paths": {}}
        name = i.get("name") or args.name
        with self._lock:
            self.registry.rest_apis[api_id] = RestApiRecord(api_id, name, body)
        return api_id, {
            **i,
            "name": name,
            "rootResourceId": _random_id(),
            "arn": f"arn:aws:apigateway:{self.region}::/restapis/{api_id}",
            "executionArn": self._arn("execute-api", api_id),
            "createdDate": "2024-01-01T00:00:00Z",
        }

    def _deployment(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        api_id = i.get("restApi")
        return _random_id(6), {
            **i,
            "executionArn": self._arn("execute-api", f"{api_id}/"),
            "createdDate": "2024-01-01T00:00:00Z",
        }

    def _stage(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        api_id, stage = i["restApi"], i["stageName"]
        with self._lock:
            self.registry.stages[stage] = api_id
        return f"ags-{api_id}-{stage}", {
            **i,
            "invokeUrl": f"{self.base_url}/{stage}",
            "executionArn": self._arn("execute-api", f"{api_id}/{stage}"),
            "arn": f"arn:aws:apigateway:{self.region}::/restapis/{api_id}/stages/{stage}",
        }

    def _api_key(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        key_id = _random_id()
        value = _unsecret(i.get("value")) or secrets.token_urlsafe(30)[:40]
        name = i.get("name") or _auto_name(args.name)
        with self._lock:
            self.registry.api_keys[key_id] = {"value": value, "enabled": i.get("enabled", True), "name": name}
        return key_id, {
            **i,
            "name": name,
            "value": value,
            "arn": f"arn:aws:apigateway:{self.region}::/apikeys/{key_id}",
            "createdDate": "2024-01-01T00:00:00Z",
        }

    def _usage_plan(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        plan_id = _random_id(6)
        stages = [(s["apiId"], s["stage"]) for s in i.get("apiStages") or []]
        with self._lock:
            self.registry.usage_plans[plan_id] = stages
        return plan_id, {
            **i,
            "name": i.get("name") or args.name,
            "arn": f"arn:aws:apigateway:{self.region}::/usageplans/{plan_id}",
        }

    def _usage_plan_key(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        with self._lock:
            self.registry.usage_plan_keys.append((i["usagePlanId"], i["keyId"]))
            key = self.registry.api_keys.get(i["keyId"], {})
        return i["keyId"], {**i, "name": key.get("name", ""), "value": key.get("value", "")}

    # -- SQS, AppSync (AppSync recorded; served by local.appsync) ----------------------------------

    def _queue(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        name = i.get("name") or _auto_name(args.name)
        # What decides redelivery (local.sqs_event_source leaves it to the queue, as AWS does).
        attributes = {
            dst: str(int(i[src])) if kind is int else str(i[src])
            for src, dst, kind in (
                ("visibilityTimeoutSeconds", "VisibilityTimeout", int),
                ("messageRetentionSeconds", "MessageRetentionPeriod", int),
                ("redrivePolicy", "RedrivePolicy", str),
            )
            if i.get(src) not in (None, "")
        }
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self._arn("sqs", name)
        return url, {**i, "name": name, "arn": arn, "url": url}

    def _graphql_api(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        api_id = _random_id(26)
        name = i.get("name") or args.name
        uris = {
            "GRAPHQL": f"{self.base_url}/graphql",
            "REALTIME": self.base_url.replace("http://", "ws://", 1) + "/graphql/realtime",
        }
        with self._lock:
            self.registry.graphql_apis[api_id] = {
                "name": name,
                "schema": i.get("schema") or "",
                "authenticationType": i.get("authenticationType", "API_KEY"),
                "additional": [p.get("authenticationType") for p in i.get("additionalAuthenticationProviders") or []],
                "uris": uris,
                "queryDepthLimit": i.get("queryDepthLimit"),
            }
        return api_id, {**i, "name": name, "arn": self._arn("appsync", f"apis/{api_id}"), "uris": uris}

    def _appsync_key(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        key = f"da2-{_random_id(26)}"
        with self._lock:
            self.registry.appsync_keys[key] = {"apiId": i["apiId"], "expires": i.get("expires")}
        return f"{i['apiId']}:{key}", {**i, "key": key}

    def _data_source(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        record = {"type": i["type"], "functionArn": (i.get("lambdaConfig") or {}).get("functionArn")}
        with self._lock:
            self.registry.data_sources[(i["apiId"], i["name"])] = record
        arn = self._arn("appsync", f"apis/{i['apiId']}/datasources/{i['name']}")
        return f"{i['apiId']}-{i['name']}", {**i, "arn": arn}

    def _resolver(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        i = args.inputs
        with self._lock:
            self.registry.resolvers[(i["apiId"], i["type"], i["field"])] = dict(i)
        arn = self._arn("appsync", f"apis/{i['apiId']}/types/{i['type']}/resolvers/{i['field']}")
        return f"{i['apiId']}-{i['type']}-{i['field']}", {**i, "arn": arn}


def _unsecret(value: Any) -> Any:
    """Secret inputs reach mocks wrapped as `{<sig key>: <secret sig>, "value": ...}`."""
    from pulumi.runtime import rpc

    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"]
    return value


def _policy_document(args: dict) -> str:
    """The `aws.iam.get_policy_document` data source, rendered like the provider renders it."""
    statements = []
    for s in args.get("statements") or []:
        out: dict[str, Any] = {}
        if s.get("sid"):
            out["Sid"] = s["sid"]
        out["Effect"] = s.get("effect", "Allow")
        for src, dst in (
            ("actions", "Action"),
            ("notActions", "NotAction"),
            ("resources", "Resource"),
            ("notResources", "NotResource"),
        ):
            values = s.get(src)
            if values:
                out[dst] = values[0] if len(values) == 1 else sorted(values, reverse=True)
        for src, dst in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if s.get(src):
                out[dst] = {
                    p["type"]: p["identifiers"][0] if len(p["identifiers"]) == 1 else p["identifiers"] for p in s[src]
                }
        if s.get("conditions"):
            cond: dict[str, dict] = {}
            for c in s["conditions"]:
                vals = c["values"]
                cond.setdefault(c["test"], {})[c["variable"]] = vals[0] if len(vals) == 1 else vals
            out["Condition"] = cond
        statements.append(out)
    return json.dumps({"Version": args.get("version", "2012-10-17"), "Statement": statements}, indent=2)
