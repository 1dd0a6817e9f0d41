"""The Workflow State API: AppSync GraphQL (queries, the backend-only mutation, the subscription).

Service clients hold the API key (the default mode); end users sign in to the stage's user pool
(AMAZON_COGNITO_USER_POOLS, an additional mode); operators use IAM. The backend publishes with
IAM: `updateWorkflowState` is `@aws_iam` in the schema, so an API-key
caller gets Unauthorized. Which function resolves each client field, and the grants it needs,
come from the operation catalogue (schema/operations.json): state queries are direct Lambda
resolvers on one read-only function; task control (start, resume, cancel, redrive, the flow
fields) runs APPSYNC_JS on a second function, graphql-control, granted what those operations need,
so a refusal's errorType is the REST code; the publishing mutation runs on a NONE data source
whose APPSYNC_JS code only echoes the committed state, which is what fans it out to subscribers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import Function, FunctionFactory
from .iam import Access, Statement, assume_role_policy, policy_document
from .identity import Identity
from .operations import Machines, graphql_fields, states_access, store_profiles
from .state_store import StateStore

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
SCHEMA_FILE = SCHEMA_DIR / "schema.graphql"
MUTATION_RESOLVER_FILE = SCHEMA_DIR / "resolvers" / "updateWorkflowState.js"
CONTROL_RESOLVER_FILE = SCHEMA_DIR / "resolvers" / "taskControl.js"
# The subscription's resolver: it sets the tenant filter from the caller's identity (enhanced filtering).
SUBSCRIPTION_RESOLVER_FILE = SCHEMA_DIR / "resolvers" / "workflowStateUpdated.js"
SUBSCRIPTION_TYPE, SUBSCRIPTION_FIELD = "Subscription", "workflowStateUpdated"
# The functions behind the catalogue's GraphQL fields (schema/operations.json `graphql.function`):
# state reads as direct Lambda resolvers; the task-control plane (writes, Step Functions), each field
# resolved by the APPSYNC_JS code of CONTROL_RESOLVER_FILE on the graphql-control Lambda data source.
QUERY_FUNCTION = "graphql-resolver"
CONTROL_FUNCTION = "graphql-control"
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
    # The stage's user pool: its users are the AMAZON_COGNITO_USER_POOLS mode.
    identity: Identity
    # Starting and controlling tasks on the second engine (infra/durable_engine.py `caller_access`).
    engine_access: Sequence[Access] = ()


class WorkflowStateApi(pulumi.ComponentResource):
    api: aws.appsync.GraphQLApi
    graphql_url: pulumi.Output[str]
    realtime_url: pulumi.Output[str]
    api_key: pulumi.Output[str]
    api_key_expires: str
    publish_field_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: WorkflowStateApiArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:api:WorkflowStateApi", name, None, opts)
        self._name = name
        self._config = config
        self.api = self._graphql_api(args.identity)
        self.api_key_expires = api_key_expiry(config.api_key_expiry_days)
        key = self._api_key()
        self.resolver = self._query_function(args)
        self.control = self._control_function(args)
        self._query_resolvers(self.resolver)
        self._control_resolvers(self.control)
        self._publish_resolver()
        self.graphql_url = self.api.uris.apply(lambda uris: uris["GRAPHQL"])
        self.realtime_url = self.api.uris.apply(lambda uris: uris["REALTIME"])
        self.api_key = pulumi.Output.secret(key.key)
        self.publish_field_arn = field_arn(self.api.arn, PUBLISH_TYPE, PUBLISH_FIELD)
        self.register_outputs({"graphqlUrl": self.graphql_url, "realtimeUrl": self.realtime_url})

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _graphql_api(self, identity: Identity) -> aws.appsync.GraphQLApi:
        """The API (API key by default; IAM and the stage's user pool additional) and its logs: a
        group with the stage's retention, written by a role AppSync assumes."""
        name, config = self._name, self._config
        debug = config.log_level == "DEBUG"
        logs_role = aws.iam.Role(
            f"{name}-logs-role",
            name=config.name("graphql-logs"),
            assume_role_policy=assume_role_policy("appsync.amazonaws.com"),
            description="AppSync writes the Workflow State API's logs",
            opts=self._child(),
        )
        api = aws.appsync.GraphQLApi(
            name,
            name=config.name("state"),
            authentication_type="API_KEY",
            additional_authentication_providers=[
                aws.appsync.GraphQLApiAdditionalAuthenticationProviderArgs(authentication_type="AWS_IAM"),
                aws.appsync.GraphQLApiAdditionalAuthenticationProviderArgs(
                    authentication_type="AMAZON_COGNITO_USER_POOLS",
                    user_pool_config=aws.appsync.GraphQLApiAdditionalAuthenticationProviderUserPoolConfigArgs(
                        user_pool_id=identity.user_pool_id,
                        app_id_client_regex=identity.client_id.apply(lambda client: f"^{re.escape(client)}$"),
                        aws_region=identity.user_pool_id.apply(lambda pool: pool.split("_", 1)[0]),
                    ),
                ),
            ],
            schema=SCHEMA_FILE.read_text(),
            query_depth_limit=QUERY_DEPTH_LIMIT,
            log_config=aws.appsync.GraphQLApiLogConfigArgs(
                cloudwatch_logs_role_arn=logs_role.arn,
                field_log_level="ALL" if debug else "ERROR",
                exclude_verbose_content=not debug,
            ),
            xray_enabled=config.tracing,
            opts=self._child(),
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=api.id.apply(lambda api_id: f"/aws/appsync/apis/{api_id}"),
            retention_in_days=config.log_retention_days,
            opts=self._child(),
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
            opts=self._child(),
        )
        return api

    def _api_key(self) -> aws.appsync.ApiKey:
        return aws.appsync.ApiKey(
            f"{self._name}-key",
            api_id=self.api.id,
            description="Clients: queries and subscriptions",
            expires=self.api_key_expires,
            opts=self._child(),
        )

    def _query_function(self, args: WorkflowStateApiArgs) -> Function:
        """State reads: one read-only function behind direct Lambda resolvers."""
        return self._functions(args).create(
            f"{self._name}-resolver",
            QUERY_FUNCTION,
            handler="aiwf.handlers.graphql.handler",
            description="Workflow State API queries (AppSync direct Lambda resolver)",
            access=[args.store.access(*store_profiles(QUERY_FUNCTION))],
        )

    def _control_function(self, args: WorkflowStateApiArgs) -> Function:
        """The task-control plane: the task API's domain calls, with the grants of the operations it serves."""
        states = states_access(CONTROL_FUNCTION, Machines(standard=args.state_machine.arn))
        return self._functions(args).create(
            f"{self._name}-control",
            CONTROL_FUNCTION,
            handler="aiwf.handlers.graphql.control_handler",
            description="Workflow State API task control: start, resume, cancel, flows (AppSync resolver)",
            environment=states.environment,
            access=[args.store.access(*store_profiles(CONTROL_FUNCTION)), *args.engine_access],
            statements=states.statements,
        )

    def _functions(self, args: WorkflowStateApiArgs) -> FunctionFactory:
        return FunctionFactory(args.code, args.layers, self._config, self)

    def _query_resolvers(self, function: Function) -> None:
        """A direct Lambda resolver for each field of QUERY_FUNCTION: no templates and no code, AppSync
        sends its direct-resolver event to the function."""
        source = self._lambda_data_source(
            self._name,
            self._config,
            function,
            resource="lambda-source",
            role="invoke",
            source_name="stateQueries",
            what="resolver",
            sid="InvokeResolver",
        )
        for type_name, field in graphql_fields(QUERY_FUNCTION):
            aws.appsync.Resolver(
                f"{self._name}-{field}",
                api_id=self.api.id,
                type=type_name,
                field=field,
                kind="UNIT",
                data_source=source.name,
                opts=self._child(),
            )

    def _control_resolvers(self, function: Function) -> None:
        """APPSYNC_JS on the control function's Lambda source for each of its fields: an
        `{error: {code}}` answer becomes errorType = code."""
        source = self._lambda_data_source(
            self._name,
            self._config,
            function,
            resource="control-source",
            role="control-invoke",
            source_name="taskControl",
            what="task-control",
            sid="InvokeControl",
        )
        code = CONTROL_RESOLVER_FILE.read_text()
        for type_name, field in graphql_fields(CONTROL_FUNCTION):
            aws.appsync.Resolver(
                f"{self._name}-{field}",
                api_id=self.api.id,
                type=type_name,
                field=field,
                kind="UNIT",
                data_source=source.name,
                runtime=aws.appsync.ResolverRuntimeArgs(name="APPSYNC_JS", runtime_version="1.0.0"),
                code=code,
                opts=self._child(),
            )

    def _publish_resolver(self) -> None:
        """The backend's mutation: a NONE data source, the committed state echoed by the resolver's own
        code; and on the same source the subscription's resolver, which sets each subscriber's tenant
        filter from its identity."""
        none_source = aws.appsync.DataSource(
            f"{self._name}-none-source", api_id=self.api.id, name="publishedState", type="NONE", opts=self._child()
        )
        aws.appsync.Resolver(
            f"{self._name}-{PUBLISH_FIELD}",
            api_id=self.api.id,
            type=PUBLISH_TYPE,
            field=PUBLISH_FIELD,
            kind="UNIT",
            data_source=none_source.name,
            runtime=aws.appsync.ResolverRuntimeArgs(name="APPSYNC_JS", runtime_version="1.0.0"),
            code=MUTATION_RESOLVER_FILE.read_text(),
            opts=self._child(),
        )
        aws.appsync.Resolver(
            f"{self._name}-{SUBSCRIPTION_FIELD}",
            api_id=self.api.id,
            type=SUBSCRIPTION_TYPE,
            field=SUBSCRIPTION_FIELD,
            kind="UNIT",
            data_source=none_source.name,
            runtime=aws.appsync.ResolverRuntimeArgs(name="APPSYNC_JS", runtime_version="1.0.0"),
            code=SUBSCRIPTION_RESOLVER_FILE.read_text(),
            opts=self._child(),
        )

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
