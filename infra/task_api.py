"""The task REST API: a RestApi built from the operation catalogue, proxying to one function, behind an API key."""

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
from .openapi import load_spec, with_lambda_integration
from .operations import REST_FUNCTION, Machines, states_access, store_profiles
from .state_store import StateStore

# API Gateway's REST integration timeout (its default and, without a quota increase, its maximum).
API_GATEWAY_TIMEOUT_SECONDS = 29


@dataclass(frozen=True)
class TaskApiArgs:
    store: StateStore
    state_machine: aws.sfn.StateMachine
    # Quick runs (POST /tasks with "wait") of flows without waits or polls run here.
    express_state_machine: aws.sfn.StateMachine
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    # Clients hold one key for both APIs: AppSync generates its key, API Gateway accepts a given one.
    api_key_value: pulumi.Input[str] | None = None
    # Starting and controlling tasks on the second engine (infra/durable_engine.py `caller_access`).
    engine_access: Sequence[Access] = ()


class TaskApi(pulumi.ComponentResource):
    """The REST API: the function that serves every REST operation of the catalogue, the RestApi
    whose body is the catalogue's OpenAPI document, its stage with throttling, and the API key."""

    url: pulumi.Output[str]
    api_key: pulumi.Output[str]

    def __init__(
        self, name: str, args: TaskApiArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:api:TaskApi", name, None, opts)
        self._name = name
        self._config = config
        self.handler = self._function(args)
        self.rest_api = self._rest_api(self.handler)
        self.stage = self._stage_and_throttling(self.rest_api)
        key = self._api_key(args, self.rest_api, self.stage)
        self.url = self.stage.invoke_url.apply(lambda url: url.rstrip("/"))
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

    def _rest_api(self, handler: Function) -> aws.apigateway.RestApi:
        """The RestApi from the catalogue's OpenAPI document, and API Gateway's permission to invoke."""
        function = handler.function
        spec = load_spec()
        rest_api = aws.apigateway.RestApi(
            self._name,
            name=self._config.name("tasks"),
            description=spec["info"]["description"],
            body=function.invoke_arn.apply(lambda arn: json.dumps(with_lambda_integration(spec, arn))),
            api_key_source="HEADER",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            opts=self._child(),
        )
        aws.lambda_.Permission(
            f"{self._name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=rest_api.execution_arn.apply(lambda arn: f"{arn}/*/*/*"),
            opts=self._child(),
        )
        return rest_api

    def _stage_and_throttling(self, rest_api: aws.apigateway.RestApi) -> aws.apigateway.Stage:
        """A deployment (replaced when the body changes), the stage serving it, and its throttling."""
        name, config = self._name, self._config
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=rest_api.id,
            triggers={"body": rest_api.body.apply(lambda body: hashlib.sha256(body.encode()).hexdigest())},
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["triggers"]),
        )
        stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=rest_api.id,
            deployment=deployment.id,
            stage_name=config.stage,
            xray_tracing_enabled=config.tracing,
            opts=self._child(),
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
            opts=self._child(),
        )
        return stage

    def _api_key(
        self, args: TaskApiArgs, rest_api: aws.apigateway.RestApi, stage: aws.apigateway.Stage
    ) -> aws.apigateway.ApiKey:
        """The API key every REST operation requires, in a usage plan of the stage."""
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
