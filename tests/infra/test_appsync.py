"""The Workflow State API as declared: auth modes, resolver wiring, and who may publish."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from graphql import parse
from graphql.language import FieldDefinitionNode, ObjectTypeDefinitionNode

from tests.infra.stackmodel import LAMBDA, REPO_ROOT, ROLE, Resource, Stack, as_list

GRAPHQL_API = "aws:appsync/graphQLApi:GraphQLApi"
APPSYNC_KEY = "aws:appsync/apiKey:ApiKey"
DATA_SOURCE = "aws:appsync/dataSource:DataSource"
RESOLVER = "aws:appsync/resolver:Resolver"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
QUEUE = "aws:sqs/queue:Queue"
RESOLVER_HANDLER = "aiwf.handlers.graphql.handler"
CONTROL_HANDLER = "aiwf.handlers.graphql.control_handler"
# Task control for clients (API key or IAM); the other mutations are for the backend or operators.
CLIENT_MUTATIONS = ("startTask", "resumeTask", "cancelTask", "redriveTask")
IAM_ONLY_MUTATIONS = ("updateWorkflowState", "putFlow", "retireFlow")
CONTROL_QUERIES = ("getFlow", "listFlows")
PUBLISHER_HANDLER = "aiwf.handlers.publisher.handler"
REPLAYER_HANDLER = "aiwf.handlers.replayer.handler"
SCHEMA = REPO_ROOT / "schema" / "schema.graphql"


def _statements(stack: Stack, role_arn: str) -> list[dict[str, Any]]:
    return stack.statements_of_role(stack.role_by_arn(role_arn))


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in statements for action in as_list(s["Action"])}


def _fields(type_name: str) -> dict[str, FieldDefinitionNode]:
    document = parse(SCHEMA.read_text())
    for definition in document.definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value == type_name:
            return {field.name.value: field for field in definition.fields}
    raise AssertionError(f"no type {type_name} in the schema")


def _directives(field: FieldDefinitionNode) -> set[str]:
    return {directive.name.value for directive in field.directives or ()}


def _source(stack: Stack, resolver: Resource) -> Resource:
    return next(s for s in stack.of_type(DATA_SOURCE) if s.inputs["name"] == resolver.inputs["dataSource"])


def test_api_key_is_the_default_mode_iam_and_the_stages_user_pool_the_others(stack: Stack) -> None:
    api = stack.one(GRAPHQL_API)
    assert api.inputs["authenticationType"] == "API_KEY"
    providers = api.inputs["additionalAuthenticationProviders"]
    assert [p["authenticationType"] for p in providers] == ["AWS_IAM", "AMAZON_COGNITO_USER_POOLS"]
    pool = providers[1]["userPoolConfig"]
    assert pool["userPoolId"] == stack.outputs["userPoolId"] == stack.one("aws:cognito/userPool:UserPool").id
    assert re.fullmatch(pool["appIdClientRegex"], stack.outputs["userPoolClientId"])
    assert pool["awsRegion"] == stack.setting("aws:region")
    assert api.inputs["schema"] == SCHEMA.read_text()
    assert api.inputs["name"] == f"aiwf-{stack.stage}-state"


def test_queries_are_limited_to_appsyncs_maximum_depth(stack: Stack) -> None:
    assert stack.one(GRAPHQL_API).inputs["queryDepthLimit"] == 75


def test_api_key_callers_cannot_publish(stack: Stack) -> None:
    """`updateWorkflowState`, `putFlow`, `retireFlow` are IAM only; clients (API key), users (the
    user pool) and operators (IAM) read, subscribe and control tasks."""
    mutation = _fields("Mutation")
    assert set(CLIENT_MUTATIONS) | set(IAM_ONLY_MUTATIONS) <= set(mutation)
    for name, field in mutation.items():
        expected = {"aws_iam"} if name in IAM_ONLY_MUTATIONS else {"aws_iam", "aws_api_key", "aws_cognito_user_pools"}
        assert _directives(field) == expected, name
    for type_name in ("Query", "Subscription"):
        for name, field in _fields(type_name).items():
            assert _directives(field) - {"aws_subscribe"} == {"aws_iam", "aws_api_key", "aws_cognito_user_pools"}, (
                f"{type_name}.{name}"
            )
    subscribe = next(
        d for d in _fields("Subscription")["workflowStateUpdated"].directives if d.name.value == "aws_subscribe"
    )
    assert subscribe.name.value == "aws_subscribe"
    assert [v.value for v in subscribe.arguments[0].value.values] == ["updateWorkflowState"]  # type: ignore[attr-defined]


def test_queries_are_direct_lambda_resolvers_on_the_read_only_function(stack: Stack) -> None:
    queries = [
        r for r in stack.of_type(RESOLVER) if r.inputs["type"] == "Query" and r.inputs["field"] not in CONTROL_QUERIES
    ]
    assert sorted(r.inputs["field"] for r in queries) == sorted(set(_fields("Query")) - set(CONTROL_QUERIES))
    function = stack.function(RESOLVER_HANDLER)
    for resolver in queries:
        assert resolver.inputs["kind"] == "UNIT"
        # Direct Lambda resolver: no mapping templates, no code.
        assert not {"requestTemplate", "responseTemplate", "code", "runtime"} & set(resolver.inputs)
        source = _source(stack, resolver)
        assert source.inputs["type"] == "AWS_LAMBDA"
        assert source.inputs["lambdaConfig"]["functionArn"] == function.outputs["arn"]
        invoke = _statements(stack, source.inputs["serviceRoleArn"])
        assert _actions(invoke) == {"lambda:InvokeFunction"}
        assert {r for s in invoke for r in as_list(s["Resource"])} == {
            function.outputs["arn"],
            f"{function.outputs['arn']}:*",
        }
    reads = _actions(_statements(stack, function.inputs["role"]))
    assert reads <= {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "s3:GetObject",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    } | {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }, sorted(reads)


def test_mutation_runs_its_own_js_on_a_none_data_source(stack: Stack) -> None:
    resolver = stack.one(RESOLVER, "state-api-updateWorkflowState")
    assert (resolver.inputs["type"], resolver.inputs["field"]) == ("Mutation", "updateWorkflowState")
    assert _source(stack, resolver).inputs["type"] == "NONE"
    assert resolver.inputs["runtime"] == {"name": "APPSYNC_JS", "runtimeVersion": "1.0.0"}
    code = Path(REPO_ROOT / "schema" / "resolvers" / "updateWorkflowState.js").read_text()
    assert resolver.inputs["code"] == code
    assert "export function request" in code and "export function response" in code


def test_the_subscription_sets_its_tenant_filter_in_its_own_js(stack: Stack) -> None:
    """The server, not the client, filters by tenant: a resolver on the subscription field sets it."""
    resolver = stack.one(RESOLVER, "state-api-workflowStateUpdated")
    assert (resolver.inputs["type"], resolver.inputs["field"]) == ("Subscription", "workflowStateUpdated")
    assert _source(stack, resolver).inputs["type"] == "NONE"
    assert resolver.inputs["runtime"] == {"name": "APPSYNC_JS", "runtimeVersion": "1.0.0"}
    code = Path(REPO_ROOT / "schema" / "resolvers" / "workflowStateUpdated.js").read_text()
    assert resolver.inputs["code"] == code
    assert "extensions.setSubscriptionFilter(util.transform.toSubscriptionFilter(" in code


def test_publisher_may_call_only_the_mutation_field(stack: Stack) -> None:
    """The publisher and its replayer (the same publish code path) are the only callers, of the one field."""
    api = stack.one(GRAPHQL_API)
    field = f"{api.outputs['arn']}/types/Mutation/fields/updateWorkflowState"
    publishers = {stack.function(handler).inputs["role"] for handler in (PUBLISHER_HANDLER, REPLAYER_HANDLER)}
    for role in stack.of_type(ROLE):
        for statement in stack.statements_of_role(role):
            appsync = [a for a in as_list(statement["Action"]) if a.startswith("appsync:")]
            if not appsync:
                continue
            assert role.outputs["arn"] in publishers, role.name
            assert appsync == ["appsync:GraphQL"] == as_list(statement["Action"])
            assert as_list(statement["Resource"]) == [field]
    for handler in (PUBLISHER_HANDLER, REPLAYER_HANDLER):
        publisher = stack.function(handler)
        assert "appsync:GraphQL" in _actions(_statements(stack, publisher.inputs["role"]))
        assert publisher.inputs["environment"]["variables"]["GRAPHQL_URL"] == stack.outputs["graphqlUrl"]


def test_stream_feeds_the_publisher_with_per_item_failures_and_a_failure_queue(stack: Stack) -> None:
    mapping = stack.one(MAPPING, "state-publisher-stream")
    tasks = next(t for t in stack.of_type("aws:dynamodb/table:Table") if t.inputs["name"].endswith("-tasks"))
    assert mapping.inputs["eventSourceArn"] == tasks.outputs["streamArn"]
    assert mapping.inputs["functionName"] == stack.function(PUBLISHER_HANDLER).outputs["arn"]
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["bisectBatchOnFunctionError"] is True
    assert 0 < mapping.inputs["maximumRetryAttempts"] <= 10
    queue = next(q for q in stack.of_type(QUEUE) if q.inputs["name"].endswith("-publish-failures"))
    assert mapping.inputs["destinationConfig"]["onFailure"]["destinationArn"] == queue.outputs["arn"]
    statements = _statements(stack, stack.function(PUBLISHER_HANDLER).inputs["role"])
    send = [s for s in statements if "sqs:SendMessage" in as_list(s["Action"])]
    assert [as_list(s["Resource"]) for s in send] == [[queue.outputs["arn"]]]
    assert not any(a.startswith("dynamodb:") and "Item" in a for a in _actions(statements)), "the publisher only reads"


def test_api_key_expiry_follows_config(stack: Stack) -> None:
    key = stack.one(APPSYNC_KEY)
    expires = dt.datetime.strptime(key.inputs["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    days = stack.setting("apiKeyExpiryDays")
    assert expires.time() == dt.time(0, 0)
    ahead = (expires - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    assert days - 1 <= ahead <= days + 0.01, (days, ahead)
    assert key.inputs["apiId"] == stack.one(GRAPHQL_API).id


def test_logging_and_tracing_follow_the_stage(stack: Stack) -> None:
    api = stack.one(GRAPHQL_API)
    debug = stack.setting("logLevel") == "DEBUG"
    assert api.inputs["logConfig"]["fieldLogLevel"] == ("ALL" if debug else "ERROR")
    assert api.inputs["xrayEnabled"] is stack.setting("tracing")
    logs_role = api.inputs["logConfig"]["cloudwatchLogsRoleArn"]
    trust = json.loads(stack.role_by_arn(logs_role).inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "appsync.amazonaws.com"}
    group = f"/aws/appsync/apis/{api.id}"
    assert any(g.inputs["name"] == group for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup"))
    for statement in _statements(stack, logs_role):
        assert all(f":log-group:{group}:" in r for r in as_list(statement["Resource"]))


def test_outputs_are_the_api_uris_and_one_key_for_both_apis(stack: Stack) -> None:
    api = stack.one(GRAPHQL_API)
    assert stack.outputs["graphqlUrl"] == api.outputs["uris"]["GRAPHQL"]
    assert stack.outputs["realtimeUrl"] == api.outputs["uris"]["REALTIME"]
    assert stack.outputs["apiKey"] == stack.one(APPSYNC_KEY).outputs["key"]
    assert stack.one("aws:apigateway/apiKey:ApiKey").inputs["value"] == stack.outputs["apiKey"]
    assert {"graphqlUrl", "realtimeUrl"} <= set(stack.outputs)
    assert len(stack.of_type(LAMBDA)) == len({f.inputs["role"] for f in stack.of_type(LAMBDA)})


def test_task_control_runs_js_on_its_own_function_with_the_task_apis_grants(stack: Stack) -> None:
    """start/resume/cancel and the flow fields: the resolver code turns `{error: {code}}` into the
    field's errorType; the function may start, complete and stop executions, as the task API may."""
    function = stack.function(CONTROL_HANDLER)
    code = (REPO_ROOT / "schema" / "resolvers" / "taskControl.js").read_text()
    fields = {("Query", q) for q in CONTROL_QUERIES} | {
        ("Mutation", m) for m in (*CLIENT_MUTATIONS, "putFlow", "retireFlow")
    }
    resolvers = {
        (r.inputs["type"], r.inputs["field"]): r
        for r in stack.of_type(RESOLVER)
        if (r.inputs["type"], r.inputs["field"]) in fields
    }
    assert set(resolvers) == fields
    for resolver in resolvers.values():
        assert resolver.inputs["runtime"] == {"name": "APPSYNC_JS", "runtimeVersion": "1.0.0"}
        assert resolver.inputs["code"] == code
        source = _source(stack, resolver)
        assert source.inputs["type"] == "AWS_LAMBDA"
        assert source.inputs["lambdaConfig"]["functionArn"] == function.outputs["arn"]
        invoke = _statements(stack, source.inputs["serviceRoleArn"])
        assert _actions(invoke) == {"lambda:InvokeFunction"}
        assert {r for s in invoke for r in as_list(s["Resource"])} == {
            function.outputs["arn"],
            f"{function.outputs['arn']}:*",
        }
    statements = _statements(stack, function.inputs["role"])
    task_api = _statements(stack, stack.function("aiwf.handlers.task_api.handler").inputs["role"])

    def states(of: list[dict[str, Any]]) -> dict[str, list[str]]:
        return {
            a: sorted(r for s in of if a in as_list(s["Action"]) for r in as_list(s["Resource"]))
            for a in _actions(of)
            if a.startswith("states:")
        }

    granted = states(statements)
    assert set(granted) == {
        "states:StartExecution",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "states:StopExecution",
    }
    assert all(granted[a] == states(task_api)[a] for a in granted), granted
    machine = stack.outputs["stateMachineArn"]
    assert granted["states:StartExecution"] == [machine]
    assert function.inputs["environment"]["variables"]["STATE_MACHINE_ARN"] == machine
