"""The task REST API: OpenAPI-defined RestApi proxying to the task-API function, behind an API key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import Function, FunctionArgs
from .iam import Access, Statement
from .openapi import load_spec, with_lambda_integration
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


def executions_of(machine_arn: pulumi.Output[str]) -> pulumi.Output[str]:
    """`arn:...:execution:<machine>:*`, every execution of the machine (continuations included)."""
    return machine_arn.apply(lambda arn: arn.replace(":stateMachine:", ":execution:", 1) + ":*")


class TaskApi(pulumi.ComponentResource):
    url: pulumi.Output[str]
    api_key: pulumi.Output[str]

    def __init__(
        self, name: str, args: TaskApiArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:api:TaskApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        store = args.store
        self.handler = Function(
            f"{name}-handler",
            FunctionArgs(
                name="task-api",
                handler="aiwf.handlers.task_api.handler",
                description="REST task API: flows, tasks, history, resume, cancel, heartbeat",
                code=args.code,
                layers=args.layers,
                environment={
                    "STATE_MACHINE_ARN": args.state_machine.arn,
                    "EXPRESS_STATE_MACHINE_ARN": args.express_state_machine.arn,
                },
                # As long as API Gateway waits for an integration: a quick run waits up to 25 s.
                timeout_seconds=API_GATEWAY_TIMEOUT_SECONDS,
                access=[
                    store.access(
                        "read", "write-tasks", "record-execution", "register-flows", "list-flows", "payloads-write"
                    ),
                    *args.engine_access,
                ],
                statements=[
                    Statement(("states:StartExecution",), (args.state_machine.arn,), sid="StartTasks"),
                    Statement(("states:StartSyncExecution",), (args.express_state_machine.arn,), sid="QuickRuns"),
                    # Completing a task token: IAM supports no resource-level permission for these
                    # actions (the token, not an ARN, names the task), so "*" is the only resource.
                    Statement(("states:SendTaskSuccess", "states:SendTaskFailure"), ("*",), sid="ResumeTasks"),
                    Statement(("states:SendTaskHeartbeat",), ("*",), sid="HeartbeatTasks"),
                    # Cancel stops the task's execution: only executions of the orchestrator.
                    Statement(("states:StopExecution",), (executions_of(args.state_machine.arn),), sid="CancelTasks"),
                ],
            ),
            config,
            opts=child,
        )
        function = self.handler.function
        spec = load_spec()
        self.rest_api = rest_api = aws.apigateway.RestApi(
            name,
            name=config.name("tasks"),
            description=spec["info"]["description"],
            body=function.invoke_arn.apply(lambda arn: json.dumps(with_lambda_integration(spec, arn))),
            api_key_source="HEADER",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=rest_api.execution_arn.apply(lambda arn: f"{arn}/*/*/*"),
            opts=child,
        )
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=rest_api.id,
            triggers={"body": rest_api.body.apply(lambda body: hashlib.sha256(body.encode()).hexdigest())},
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["triggers"]),
        )
        self.stage = stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=rest_api.id,
            deployment=deployment.id,
            stage_name=config.stage,
            xray_tracing_enabled=config.tracing,
            opts=child,
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
            opts=child,
        )
        key = aws.apigateway.ApiKey(
            f"{name}-key", name=config.name("tasks-key"), value=args.api_key_value, enabled=True, opts=child
        )
        plan = aws.apigateway.UsagePlan(
            f"{name}-plan",
            name=config.name("tasks-plan"),
            api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=rest_api.id, stage=stage.stage_name)],
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                rate_limit=config.throttle_rate_limit, burst_limit=config.throttle_burst_limit
            ),
            opts=child,
        )
        aws.apigateway.UsagePlanKey(
            f"{name}-plan-key", key_id=key.id, key_type="API_KEY", usage_plan_id=plan.id, opts=child
        )
        self.url = stage.invoke_url.apply(lambda url: url.rstrip("/"))
        self.api_key = pulumi.Output.secret(key.value)
        self.register_outputs({"url": self.url})
