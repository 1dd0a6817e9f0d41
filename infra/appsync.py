"""The Workflow State API: AppSync GraphQL (queries, the backend-only mutation, the subscription).

Clients hold the API key (the default mode): they read and subscribe. The backend publishes with
IAM (the additional mode): `updateWorkflowState` is `@aws_iam` in the schema, so an API-key
caller gets Unauthorized. State queries are direct Lambda resolvers on one read-only function;
task control (startTask, resumeTask, cancelTask, getFlow, listFlows, and the IAM-only putFlow and
retireFlow) runs APPSYNC_JS on a second function, graphql-control, with the task API's grants for
those calls, so a refusal's errorType is the REST code; the publishing mutation runs on a NONE
data source whose APPSYNC_JS code only echoes the committed state, which is what fans it out to
subscribers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import Function, FunctionArgs
from .iam import Access, Statement, assume_role_policy, policy_document
from .state_store import StateStore
from .task_api import executions_of

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
SCHEMA_FILE = SCHEMA_DIR / "schema.graphql"
MUTATION_RESOLVER_FILE = SCHEMA_DIR / "resolvers" / "updateWorkflowState.js"
CONTROL_RESOLVER_FILE = SCHEMA_DIR / "resolvers" / "taskControl.js"
QUERY_FIELDS = ("getWorkflowState", "listWorkflowStates", "getWorkflowHistory")
# The task-control plane on its own function (writes, Step Functions): (type, field), each resolved
# by the APPSYNC_JS code of CONTROL_RESOLVER_FILE on the graphql-control Lambda data source.
CONTROL_FIELDS = (
    ("Mutation", "startTask"),
    ("Mutation", "resumeTask"),
    ("Mutation", "cancelTask"),
    ("Query", "getFlow"),
    ("Query", "listFlows"),
    ("Mutation", "putFlow"),
    ("Mutation", "retireFlow"),
    ("Mutation", "redriveTask"),
)
# AppSync's maximum `queryDepthLimit` (its default, 0, sets no limit at all); the local stack
# enforces the same value.
QUERY_DEPTH_LIMIT = 75
PUBLISH_TYPE, PUBLISH_FIELD = "Mutation", "updateWorkflowState"


def api_key_expiry(days: int, today: dt.date | None = None) -> str:
    """00:00 UTC `days` after today, RFC 3339: stable within a day, so a redeploy is no change."""
    start = dt.datetime.combine(today or dt.datetime.now(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    return (start + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def field_arn(api_arn: pulumi.Input[str], type_name: str, field: str) -> pulumi.Output[str]:
    """The IAM resource of one GraphQL field: what `appsync:GraphQL` is granted on."""
    return pulumi.Output.from_input(api_arn).apply(lambda arn: f"{arn}/types/{type_name}/fields/{field}")


@dataclass(frozen=True)
class WorkflowStateApiArgs:
    store: StateStore
    state_machine: aws.sfn.StateMachine
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    # Starting and controlling tasks on the second engine (infra/durable_engine.py `caller_access`).
    engine_access: Sequence[Access] = ()


class WorkflowStateApi(pulumi.ComponentResource):
    api: aws.appsync.GraphQLApi
    graphql_url: pulumi.Output[str]
    realtime_url: pulumi.Output[str]
    api_key: pulumi.Output[str]
    publish_field_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: WorkflowStateApiArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:api:WorkflowStateApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        store = args.store
        debug = config.log_level == "DEBUG"

        # AppSync writes its logs with a role it assumes; the group is declared so it gets a retention.
        logs_role = aws.iam.Role(
            f"{name}-logs-role",
            name=config.name("graphql-logs"),
            assume_role_policy=assume_role_policy("appsync.amazonaws.com"),
            description="AppSync writes the Workflow State API's logs",
            opts=child,
        )
        self.api = aws.appsync.GraphQLApi(
            name,
            name=config.name("state"),
            authentication_type="API_KEY",
            additional_authentication_providers=[
                aws.appsync.GraphQLApiAdditionalAuthenticationProviderArgs(authentication_type="AWS_IAM")
            ],
            schema=SCHEMA_FILE.read_text(),
            query_depth_limit=QUERY_DEPTH_LIMIT,
            log_config=aws.appsync.GraphQLApiLogConfigArgs(
                cloudwatch_logs_role_arn=logs_role.arn,
                field_log_level="ALL" if debug else "ERROR",
                exclude_verbose_content=not debug,
            ),
            xray_enabled=config.tracing,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=self.api.id.apply(lambda api_id: f"/aws/appsync/apis/{api_id}"),
            retention_in_days=config.log_retention_days,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-logs-policy",
            role=logs_role.id,
            policy=policy_document(
                [
                    Statement(
                        ("logs:CreateLogStream", "logs:PutLogEvents"),
                        (log_group.arn.apply(lambda arn: f"{arn}:*"),),
                        sid="ApiLogs",
                    )
                ]
            ),
            opts=child,
        )
        key = aws.appsync.ApiKey(
            f"{name}-key",
            api_id=self.api.id,
            description="Clients: queries and subscriptions",
            expires=api_key_expiry(config.api_key_expiry_days),
            opts=child,
        )

        # Queries: one read-only function behind direct Lambda resolvers.
        self.resolver = Function(
            f"{name}-resolver",
            FunctionArgs(
                name="graphql-resolver",
                handler="aiwf.handlers.graphql.handler",
                description="Workflow State API queries (AppSync direct Lambda resolver)",
                code=args.code,
                layers=args.layers,
                access=[store.access("read", "payloads-read")],
            ),
            config,
            opts=child,
        )
        # The task-control plane: the task API's domain calls, with the task API's grants for them.
        self.control = Function(
            f"{name}-control",
            FunctionArgs(
                name="graphql-control",
                handler="aiwf.handlers.graphql.control_handler",
                description="Workflow State API task control: start, resume, cancel, flows (AppSync resolver)",
                code=args.code,
                layers=args.layers,
                environment={"STATE_MACHINE_ARN": args.state_machine.arn},
                access=[
                    store.access(
                        "read", "write-tasks", "record-execution", "register-flows", "list-flows", "payloads-write"
                    ),
                    *args.engine_access,
                ],
                statements=[
                    Statement(("states:StartExecution",), (args.state_machine.arn,), sid="StartTasks"),
                    # Completing a task token: IAM supports no resource-level permission for these
                    # actions (the token, not an ARN, names the task), so "*" is the only resource.
                    Statement(("states:SendTaskSuccess", "states:SendTaskFailure"), ("*",), sid="ResumeTasks"),
                    # Cancel stops the task's execution: only executions of the orchestrator.
                    Statement(("states:StopExecution",), (executions_of(args.state_machine.arn),), sid="CancelTasks"),
                ],
            ),
            config,
            opts=child,
        )
        lambda_source = self._lambda_data_source(
            name,
            config,
            self.resolver,
            resource="lambda-source",
            role="invoke",
            source_name="stateQueries",
            what="resolver",
            sid="InvokeResolver",
        )
        for field in QUERY_FIELDS:
            # No templates and no code: AppSync sends its direct-resolver event to the function.
            aws.appsync.Resolver(
                f"{name}-{field}",
                api_id=self.api.id,
                type="Query",
                field=field,
                kind="UNIT",
                data_source=lambda_source.name,
                opts=child,
            )

        control_source = self._lambda_data_source(
            name,
            config,
            self.control,
            resource="control-source",
            role="control-invoke",
            source_name="taskControl",
            what="task-control",
            sid="InvokeControl",
        )
        control_code = CONTROL_RESOLVER_FILE.read_text()
        for type_name, field in CONTROL_FIELDS:
            # APPSYNC_JS on the Lambda source: an `{error: {code}}` answer becomes errorType = code.
            aws.appsync.Resolver(
                f"{name}-{field}",
                api_id=self.api.id,
                type=type_name,
                field=field,
                kind="UNIT",
                data_source=control_source.name,
                runtime=aws.appsync.ResolverRuntimeArgs(name="APPSYNC_JS", runtime_version="1.0.0"),
                code=control_code,
                opts=child,
            )

        # The mutation: NONE data source, the committed state echoed by the resolver's own code.
        none_source = aws.appsync.DataSource(
            f"{name}-none-source", api_id=self.api.id, name="publishedState", type="NONE", opts=child
        )
        aws.appsync.Resolver(
            f"{name}-{PUBLISH_FIELD}",
            api_id=self.api.id,
            type=PUBLISH_TYPE,
            field=PUBLISH_FIELD,
            kind="UNIT",
            data_source=none_source.name,
            runtime=aws.appsync.ResolverRuntimeArgs(name="APPSYNC_JS", runtime_version="1.0.0"),
            code=MUTATION_RESOLVER_FILE.read_text(),
            opts=child,
        )

        self.graphql_url = self.api.uris.apply(lambda uris: uris["GRAPHQL"])
        self.realtime_url = self.api.uris.apply(lambda uris: uris["REALTIME"])
        self.api_key = pulumi.Output.secret(key.key)
        self.publish_field_arn = field_arn(self.api.arn, PUBLISH_TYPE, PUBLISH_FIELD)
        self.register_outputs({"graphqlUrl": self.graphql_url, "realtimeUrl": self.realtime_url})

    def _lambda_data_source(
        self,
        name: str,
        config: StageConfig,
        function: Function,
        *,
        resource: str,
        role: str,
        source_name: str,
        what: str,
        sid: str,
    ) -> aws.appsync.DataSource:
        """A Lambda data source with its own invoke role, allowed to invoke `function` only."""
        child = pulumi.ResourceOptions(parent=self)
        function_arn = function.function.arn
        invoke_role = aws.iam.Role(
            f"{name}-{role}-role",
            name=config.name(f"graphql-{role}"),
            assume_role_policy=assume_role_policy("appsync.amazonaws.com"),
            description=f"AppSync invokes the Workflow State API {what} function",
            opts=child,
        )
        invoke_policy = aws.iam.RolePolicy(
            f"{name}-{role}-policy",
            role=invoke_role.id,
            policy=policy_document(
                [
                    Statement(
                        ("lambda:InvokeFunction",),
                        (function_arn, function_arn.apply(lambda arn: f"{arn}:*")),
                        sid=sid,
                    )
                ]
            ),
            opts=child,
        )
        return aws.appsync.DataSource(
            f"{name}-{resource}",
            api_id=self.api.id,
            name=source_name,
            type="AWS_LAMBDA",
            service_role_arn=invoke_role.arn,
            lambda_config=aws.appsync.DataSourceLambdaConfigArgs(function_arn=function_arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[invoke_policy]),
        )
