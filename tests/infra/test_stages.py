"""Stages differ by config, not code: dev and prod must differ exactly where their YAML files do.

Expectations are read from `Pulumi.<stage>.yaml`, so changing a value in a stage file needs no
test change, while a resource that ignores (or hard-codes) a setting fails here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.stackmodel import (
    API_STAGE,
    BUCKET,
    LAMBDA,
    LOG_GROUP,
    METHOD_SETTINGS,
    ROLE_POLICY,
    STATE_MACHINE,
    TABLE,
    USAGE_PLAN,
    Resource,
    Stack,
    as_list,
    statements,
)

GRAPHQL_API = "aws:appsync/graphQLApi:GraphQLApi"
APPSYNC_KEY = "aws:appsync/apiKey:ApiKey"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
XRAY_STATEMENT_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}

# Where each setting may show up in the resource graph: (resource type, flattened input path regex).
# `options.*` are resource options (retainOnDelete), everything else is an input.
EFFECTS: dict[str, list[tuple[str, str]]] = {
    "logLevel": [
        (LAMBDA, r"inputs\.environment\.variables\.POWERTOOLS_LOG_LEVEL"),
        (STATE_MACHINE, r"inputs\.loggingConfiguration\.(level|includeExecutionData)"),
        (GRAPHQL_API, r"inputs\.logConfig\.(fieldLogLevel|excludeVerboseContent)"),
    ],
    "logRetentionDays": [(LOG_GROUP, r"inputs\.retentionInDays")],
    "retainOnDelete": [
        (TABLE, r"options\.retainOnDelete|inputs\.deletionProtectionEnabled"),
        (BUCKET, r"options\.retainOnDelete|inputs\.forceDestroy"),
        ("aws:cognito/userPool:UserPool", r"options\.retainOnDelete|inputs\.deletionProtection"),
    ],
    "pointInTimeRecovery": [(TABLE, r"inputs\.pointInTimeRecovery\.enabled")],
    "tracing": [
        (LAMBDA, r"inputs\.tracingConfig\.mode"),
        (STATE_MACHINE, r"inputs\.tracingConfiguration\.enabled"),
        (API_STAGE, r"inputs\.xrayTracingEnabled"),
        (GRAPHQL_API, r"inputs\.xrayEnabled"),
        (ROLE_POLICY, r"inputs\.policy\.Statement\.Tracing(\..*)?"),
    ],
    # The replay queue's visibility timeout covers the replayer's timeout (six times it).
    "lambdaTimeoutSeconds": [
        (LAMBDA, r"inputs\.timeout"),
        ("aws:sqs/queue:Queue", r"inputs\.visibilityTimeoutSeconds"),
    ],
    "lambdaMemoryMb": [(LAMBDA, r"inputs\.memorySize")],
    "throttleRateLimit": [
        (USAGE_PLAN, r"inputs\.throttleSettings\.rateLimit"),
        (METHOD_SETTINGS, r"inputs\.settings\.throttlingRateLimit"),
    ],
    "throttleBurstLimit": [
        (USAGE_PLAN, r"inputs\.throttleSettings\.burstLimit"),
        (METHOD_SETTINGS, r"inputs\.settings\.throttlingBurstLimit"),
    ],
    # The REST authorizer accepts the key until the AppSync key's expiry.
    "apiKeyExpiryDays": [
        (APPSYNC_KEY, r"inputs\.expires"),
        (LAMBDA, r"inputs\.environment\.variables\.API_KEY_EXPIRES"),
    ],
    "alarmActions": [(METRIC_ALARM, r"inputs\.actionsEnabled")],
    "payloadThresholdBytes": [(LAMBDA, r"inputs\.environment\.variables\.PAYLOAD_THRESHOLD_BYTES")],
    "egress": [(LAMBDA, r"inputs\.environment\.variables\.EGRESS_[A-Z_]+")],
}
# Inputs whose value is a JSON document: compared by content, statements keyed by Sid.
JSON_INPUTS = ("policy", "assumeRolePolicy", "definition", "body")
# The deployment trigger is a digest of the RestApi body, which embeds stage-named ARNs: it must
# differ between stages and says nothing about config (test_task_api checks it is deterministic).
IGNORED_PATHS = {("aws:apigateway/deployment:Deployment", "inputs.triggers.body")}


def _normalize(value: Any, stage: str) -> Any:
    """Stage names inside values (`aiwf-dev-tasks`, `STAGE=dev`, the task API URL's stage path
    `.../dev`) are expected differences."""
    if isinstance(value, str):
        if value == stage:
            return "<stage>"
        value = re.sub(rf"^(https://[^/]+\.execute-api\.[^/]+)/{stage}$", r"\1/<stage>", value)
        return re.sub(rf"aiwf-{stage}-", "aiwf-<stage>-", value)
    return value


def _flatten(value: Any, prefix: str, out: dict[str, Any], stage: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}", out, stage)
    elif isinstance(value, list):
        if value and all(isinstance(item, dict) and "Sid" in item for item in value):
            for item in value:
                _flatten(item, f"{prefix}.{item['Sid']}", out, stage)
        else:
            for index, item in enumerate(value):
                _flatten(item, f"{prefix}.{index}", out, stage)
    else:
        out[prefix] = _normalize(value, stage)


def flatten(resource: Resource, stage: str) -> dict[str, Any]:
    """Every input (JSON documents parsed) and option of a resource as `path -> value`."""
    inputs = {
        key: json.loads(value) if key in JSON_INPUTS and isinstance(value, str) else value
        for key, value in resource.inputs.items()
    }
    out: dict[str, Any] = {}
    _flatten(inputs, "inputs", out, stage)
    out["options.retainOnDelete"] = resource.retain_on_delete
    return out


def _differing_settings(stacks: dict[str, Stack]) -> set[str]:
    dev, prod = stacks["dev"], stacks["prod"]
    keys = {key.split(":", 1)[1] for key in (*dev.config, *prod.config) if key.startswith("ai-workflows:")}
    return {key for key in keys if dev.config.get(f"ai-workflows:{key}") != prod.config.get(f"ai-workflows:{key}")}


def test_stage_files_set_the_same_keys(stacks: dict[str, Stack]) -> None:
    """A key set in one stage only would silently take the code default in the other."""
    assert set(stacks["dev"].config) == set(stacks["prod"].config)


def test_every_stage_setting_has_a_known_effect(stacks: dict[str, Stack]) -> None:
    """A setting this suite does not know where to look for cannot be checked: extend EFFECTS."""
    keys = {key.split(":", 1)[1] for key in stacks["dev"].config if key.startswith("ai-workflows:")}
    assert keys <= set(EFFECTS), f"settings without a declared effect: {sorted(keys - set(EFFECTS))}"


def test_both_stages_declare_the_same_resources(stacks: dict[str, Stack]) -> None:
    """Stages differ by values, never by which resources exist."""
    assert sorted(r.key for r in stacks["dev"].resources) == sorted(r.key for r in stacks["prod"].resources)


def test_dev_and_prod_differ_exactly_where_their_configs_differ(stacks: dict[str, Stack]) -> None:
    """Every input that differs between stages is explained by a setting that differs, and vice versa."""
    dev, prod = stacks["dev"], stacks["prod"]
    differing = _differing_settings(stacks)
    assert differing, "dev and prod configs are identical: this test would prove nothing"
    unexplained: list[str] = []
    seen: set[str] = set()
    for resource in dev.resources:
        left = flatten(resource, "dev")
        right = flatten(prod.by_key(resource.key), "prod")
        for path in sorted(set(left) | set(right)):
            if left.get(path, "<absent>") == right.get(path, "<absent>") or (resource.type, path) in IGNORED_PATHS:
                continue
            causes = {
                key
                for key in differing
                for type_, pattern in EFFECTS.get(key, [])
                if type_ == resource.type and re.fullmatch(pattern, path)
            }
            if not causes:
                unexplained.append(
                    f"{resource.key} {path}: dev={left.get(path, '<absent>')!r} prod={right.get(path, '<absent>')!r}"
                )
            seen |= causes
    assert not unexplained, "differences no stage setting explains:\n" + "\n".join(unexplained)
    assert seen == differing, f"settings that differ but change nothing: {sorted(differing - seen)}"


def test_tables_point_in_time_recovery_follows_config(stack: Stack) -> None:
    tables = stack.of_type(TABLE)
    assert len(tables) == 3
    for table in tables:
        assert table.inputs["pointInTimeRecovery"]["enabled"] is stack.setting("pointInTimeRecovery"), table.name


def test_data_retention_follows_config(stack: Stack) -> None:
    """Prod keeps its data if the stack is destroyed; dev cleans up."""
    retain = stack.setting("retainOnDelete")
    for table in stack.of_type(TABLE):
        assert table.retain_on_delete is retain, table.name
        assert table.inputs["deletionProtectionEnabled"] is retain, table.name
    bucket = stack.one(BUCKET)
    assert bucket.retain_on_delete is retain
    assert bucket.inputs["forceDestroy"] is (not retain)


def test_every_log_group_uses_the_stage_retention(stack: Stack) -> None:
    groups = stack.of_type(LOG_GROUP)
    assert len(groups) == len(stack.functions()) + 3, "one log group per function, each state machine's, AppSync's"
    for group in groups:
        assert group.inputs["retentionInDays"] == stack.setting("logRetentionDays"), group.name


def test_tracing_follows_config(stack: Stack) -> None:
    tracing = stack.setting("tracing")
    for function in stack.functions():
        assert function.inputs["tracingConfig"]["mode"] == ("Active" if tracing else "PassThrough"), function.name
    assert stack.one(STATE_MACHINE, "orchestrator").inputs["tracingConfiguration"]["enabled"] is tracing
    assert stack.one(API_STAGE).inputs["xrayTracingEnabled"] is tracing
    # A traced function needs the X-Ray write actions; an untraced one must not have them.
    for function in stack.functions():
        role = stack.role_by_arn(function.inputs["role"])
        actions = {a for s in stack.statements_of_role(role) for a in as_list(s["Action"])}
        assert actions.issuperset(XRAY_STATEMENT_ACTIONS) is tracing, function.name
        if not tracing:
            assert not any(a.startswith("xray:") for a in actions), function.name


def test_lambda_sizing_follows_config(stack: Stack) -> None:
    writers = 0
    for function in stack.functions():
        # The REST API's function runs as long as API Gateway waits for it (a quick run waits 25 s).
        # The authorizer's is within API Gateway's 10 s wait for an authorizer.
        timeout = {"aiwf.handlers.task_api.handler": 29, "aiwf.handlers.authorizer.handler": 10}.get(
            function.inputs["handler"]
        )
        assert function.inputs["timeout"] == (timeout or stack.setting("lambdaTimeoutSeconds")), function.name
        assert function.inputs["memorySize"] == stack.setting("lambdaMemoryMb"), function.name
        variables = function.inputs["environment"]["variables"]
        assert variables["POWERTOOLS_LOG_LEVEL"] == stack.setting("logLevel"), function.name
        if "PAYLOAD_THRESHOLD_BYTES" in variables:  # the functions that write payloads (payloads-write)
            writers += 1
            assert variables["PAYLOAD_THRESHOLD_BYTES"] == str(stack.setting("payloadThresholdBytes")), function.name
        assert variables["STAGE"] == stack.stage
    assert writers, "no function writes payloads"


def test_every_function_gets_the_stage_egress_policy(stack: Stack) -> None:
    """Any function could make a flow's outbound call: each one carries the same egress settings."""
    egress = stack.setting("egress")
    expected = {
        "EGRESS_ALLOW_LOOPBACK": "true" if egress.get("allowLoopback") else "false",
        "EGRESS_ALLOW_PRIVATE_NETWORKS": "true" if egress.get("allowPrivateNetworks") else "false",
        "EGRESS_DENY_HOSTS": ",".join(egress.get("denyHosts") or []),
    }
    for function in stack.functions():
        variables = function.inputs["environment"]["variables"]
        assert {key: variables.get(key) for key in expected} == expected, function.name


@pytest.mark.parametrize("resource_type", [USAGE_PLAN, METHOD_SETTINGS])
def test_throttling_follows_config(stack: Stack, resource_type: str) -> None:
    """Both layers throttle: the usage plan (per key) and the stage's method settings (per method)."""
    resource = stack.one(resource_type)
    if resource_type == USAGE_PLAN:
        rate, burst = (
            resource.inputs["throttleSettings"]["rateLimit"],
            resource.inputs["throttleSettings"]["burstLimit"],
        )
        assert [s["stage"] for s in resource.inputs["apiStages"]] == [stack.stage]
    else:
        rate, burst = (
            resource.inputs["settings"]["throttlingRateLimit"],
            resource.inputs["settings"]["throttlingBurstLimit"],
        )
        assert resource.inputs["methodPath"] == "*/*"
        assert resource.inputs["stageName"] == stack.stage
    assert rate == stack.setting("throttleRateLimit")
    assert burst == stack.setting("throttleBurstLimit")


def test_state_machine_log_level_follows_config(stack: Stack) -> None:
    """DEBUG stages log every event with its data; others log errors only, without payloads."""
    debug = stack.setting("logLevel") == "DEBUG"
    machines = stack.of_type(STATE_MACHINE)
    assert len(machines) == 2  # Standard, and Express for quick runs
    for machine in machines:
        logging = machine.inputs["loggingConfiguration"]
        assert logging["level"] == ("ALL" if debug else "ERROR")
        assert logging["includeExecutionData"] is debug
        group = next(
            g
            for g in stack.of_type(LOG_GROUP)
            if g.inputs["name"] == f"/aws/vendedlogs/states/{machine.inputs['name']}"
        )
        assert logging["logDestination"] == f"{group.outputs['arn']}:*"


def test_statement_sids_used_for_stage_diffs_are_unique(stack: Stack) -> None:
    """The stage diff keys policy statements by Sid; duplicates would hide a difference."""
    for policy in stack.of_type(ROLE_POLICY):
        sids = [s.get("Sid") for s in statements(json.loads(policy.inputs["policy"]))]
        assert len(sids) == len(set(sids)), policy.name
