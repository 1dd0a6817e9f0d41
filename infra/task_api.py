"""The task REST API: a RestApi built from the operation catalogue, proxying to one function.

Each method carries its own security (infra/openapi.py): operators' methods are AWS_IAM; the
rest pass the API's Lambda REQUEST authorizer (`aiwf.handlers.authorizer`), which accepts a user
pool ID token or the stage API key. The authorizer knows the key by its SHA-256 and its expiry
(the AppSync key's), both settings of that function alone: rotating the key (a new AppSync key,
`pulumi up`) changes the authorizer's configuration and the API Gateway key, never the RestApi body,
so no deployment of the API follows.

Two components: `TaskRestApi` (the RestApi, its deployment and stage) is declared first, from the
stage's config alone, because the functions that announce waits need its URL (a wait's
`callbackUrl`), and the task API function depends on them (through the state machine and the
durable engine's version): the RestApi's body therefore names the task API function and the
authorizer by their physical names, not by the function resources, which would close the cycle
RestApi -> task API function -> state machine -> process-steps -> RestApi. `TaskApi` then declares
the two functions, API Gateway's permissions to invoke them, and the API key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import Function, FunctionFactory
from .iam import Access
from .identity import Identity
from .openapi import gateway_body, load_spec
from .operations import REST_FUNCTION, Machines, states_access, store_profiles
from .runtime_settings import environment
from .state_store import StateStore

# API Gateway's REST integration timeout (its default and, without a quota increase, its maximum).
API_GATEWAY_TIMEOUT_SECONDS = 29
# API Gateway waits at most 10 s for an authorizer; a cold start plus one JWKS read fit well within.
AUTHORIZER_TIMEOUT_SECONDS = 10
AUTHORIZER_FUNCTION = "authorizer"


class TaskRestApi(pulumi.ComponentResource):
    """The RestApi from the catalogue's OpenAPI document, the deployment that serves it at the
    stage, and the stage's throttling; `url` is what waits build their `callbackUrl` from."""

    url: pulumi.Output[str]

    def __init__(self, name: str, config: StageConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aiwf:api:TaskRestApi", name, None, opts)
        self._name, self._config = name, config
        # These resources were TaskApi's children before the split: the aliases keep them (and the URL).
        self._moved = pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.create_urn(name, "aiwf:api:TaskApi"))]
        )
        self.rest_api = self._rest_api()
        self.stage = self._stage_and_throttling(self.rest_api)
        self.url = self.stage.invoke_url.apply(lambda url: url.rstrip("/"))
        self.register_outputs({"url": self.url})

    def _rest_api(self) -> aws.apigateway.RestApi:
        """The RestApi from the catalogue's OpenAPI document, proxying to the task API function."""
        spec = load_spec()
        return aws.apigateway.RestApi(
            self._name,
            name=self._config.name("tasks"),
            description=spec["info"]["description"],
            body=pulumi.Output.all(
                function_invoke_arn(self._config, REST_FUNCTION),
                function_invoke_arn(self._config, AUTHORIZER_FUNCTION),
            ).apply(lambda arns: json.dumps(gateway_body(spec, arns[0], arns[1]))),
            api_key_source="AUTHORIZER",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            opts=self._moved,
        )

    def _stage_and_throttling(self, rest_api: aws.apigateway.RestApi) -> aws.apigateway.Stage:
        """A deployment (replaced when the body changes), the stage serving it, and its throttling."""
        name, config = self._name, self._config
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=rest_api.id,
            triggers={"body": rest_api.body.apply(lambda body: hashlib.sha256(body.encode()).hexdigest())},
            opts=pulumi.ResourceOptions.merge(self._moved, pulumi.ResourceOptions(replace_on_changes=["triggers"])),
        )
        stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=rest_api.id,
            deployment=deployment.id,
            stage_name=config.stage,
            xray_tracing_enabled=config.tracing,
            opts=self._moved,
        )
        aws.apigateway.MethodSettings(
            f"{name}-throttling",
            rest_api=rest_api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                metrics_enabled=True,
            ),
            opts=self._moved,
        )
        return stage


def function_invoke_arn(config: StageConfig, function: str) -> pulumi.Output[str]:
    """The invoke ARN of the stage's function `function` (FunctionFactory names it
    `aiwf-<stage>-<function>`), built from the name as API Gateway's Lambda integration takes it."""
    physical = config.name(function)
    region = aws.get_region_output().region
    account = aws.get_caller_identity_output().account_id
    return pulumi.Output.all(region, account).apply(
        lambda v: (
            f"arn:aws:apigateway:{v[0]}:lambda:path/2015-03-31/functions/"
            f"arn:aws:lambda:{v[0]}:{v[1]}:function:{physical}/invocations"
        )
    )


@dataclass(frozen=True)
class TaskApiArgs:
    # The RestApi, declared before the functions that announce waits (they take its URL).
    rest: TaskRestApi
    store: StateStore
    state_machine: aws.sfn.StateMachine
    # Quick runs (POST /tasks with "wait") of flows without waits or polls run here.
    express_state_machine: aws.sfn.StateMachine
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    # The stage's user pool: the authorizer accepts its ID tokens.
    identity: Identity
    # Clients hold one key for both APIs: AppSync generates its key, API Gateway accepts a given one.
    api_key_value: pulumi.Input[str] | None = None
    # When the key stops being accepted (RFC 3339; the AppSync key's `expires`); None: never.
    api_key_expires: str | None = None
    # Starting and controlling tasks on the second engine (infra/durable_engine.py `caller_access`).
    engine_access: Sequence[Access] = ()


def _sha256(value: str) -> str:
    """How the authorizer knows a key without holding it (empty: no key is accepted)."""
    return hashlib.sha256(value.encode()).hexdigest() if value else ""


class TaskApi(pulumi.ComponentResource):
    """The REST API: the function that serves every REST operation of the catalogue (of the
    `TaskRestApi` it is given), its authorizer, API Gateway's permissions to invoke both, and the
    API key."""

    url: pulumi.Output[str]
    api_key: pulumi.Output[str]

    def __init__(
        self, name: str, args: TaskApiArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:api:TaskApi", name, None, opts)
        self._name = name
        self._config = config
        self.handler = self._function(args)
        self.authorizer = self._authorizer(args, pulumi.Output.secret(args.api_key_value or ""))
        self.rest_api, self.stage = args.rest.rest_api, args.rest.stage
        self._permissions(self.handler, self.authorizer, self.rest_api)
        key = self._api_key(args, self.rest_api, self.stage)
        self.url = args.rest.url
        self.api_key = pulumi.Output.secret(key.value)
        self.register_outputs({"url": self.url})

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _function(self, args: TaskApiArgs) -> Function:
        """The task-api function, granted what the catalogue's REST operations need."""
        machines = Machines(standard=args.state_machine.arn, express=args.express_state_machine.arn)
        states = states_access(REST_FUNCTION, machines)
        return FunctionFactory(args.code, args.layers, self._config, self).create(
            f"{self._name}-handler",
            REST_FUNCTION,
            handler="aiwf.handlers.task_api.handler",
            description="REST task API: flows, tasks, history, resume, cancel, heartbeat",
            environment=states.environment,
            # As long as API Gateway waits for an integration: a quick run waits up to 25 s.
            timeout_seconds=API_GATEWAY_TIMEOUT_SECONDS,
            access=[args.store.access(*store_profiles(REST_FUNCTION)), *args.engine_access],
            statements=states.statements,
        )

    def _authorizer(self, args: TaskApiArgs, key_value: pulumi.Output[str]) -> Function:
        """The Lambda REQUEST authorizer: it reads nothing but the pool's public keys (HTTPS, no IAM)."""
        return FunctionFactory(args.code, args.layers, self._config, self).create(
            f"{self._name}-authorizer",
            AUTHORIZER_FUNCTION,
            handler="aiwf.handlers.authorizer.handler",
            description="REST task API authorizer: a user pool ID token or the API key",
            environment=environment(
                user_pool_id=args.identity.user_pool_id,
                user_pool_client_id=args.identity.client_id,
                # A digest of a random key reveals nothing: plain, so the environment is not all secret.
                api_key_hashes=pulumi.Output.unsecret(key_value.apply(_sha256)),
                api_key_expires=args.api_key_expires,
            ),
            timeout_seconds=AUTHORIZER_TIMEOUT_SECONDS,
        )

    def _permissions(self, handler: Function, authorizer: Function, rest_api: aws.apigateway.RestApi) -> None:
        """API Gateway may invoke the handler (any method of this API) and the authorizer (this
        API's authorizers), from this API only."""
        aws.lambda_.Permission(
            f"{self._name}-invoke",
            action="lambda:InvokeFunction",
            function=handler.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=rest_api.execution_arn.apply(lambda arn: f"{arn}/*/*/*"),
            opts=self._child(),
        )
        aws.lambda_.Permission(
            f"{self._name}-authorizer-invoke",
            action="lambda:InvokeFunction",
            function=authorizer.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=rest_api.execution_arn.apply(lambda arn: f"{arn}/authorizers/*"),
            opts=self._child(),
        )

    def _api_key(
        self, args: TaskApiArgs, rest_api: aws.apigateway.RestApi, stage: aws.apigateway.Stage
    ) -> aws.apigateway.ApiKey:
        """The API key in a usage plan of the stage: the authorizer names it (`usageIdentifierKey`) for
        the plan's metering and throttling; whether a request may use it, the authorizer decides."""
        name, config = self._name, self._config
        key = aws.apigateway.ApiKey(
            f"{name}-key", name=config.name("tasks-key"), value=args.api_key_value, enabled=True, opts=self._child()
        )
        plan = aws.apigateway.UsagePlan(
            f"{name}-plan",
            name=config.name("tasks-plan"),
            api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=rest_api.id, stage=stage.stage_name)],
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                rate_limit=config.throttle_rate_limit, burst_limit=config.throttle_burst_limit
            ),
            opts=self._child(),
        )
        aws.apigateway.UsagePlanKey(
            f"{name}-plan-key", key_id=key.id, key_type="API_KEY", usage_plan_id=plan.id, opts=self._child()
        )
        return key
