"""The second engine: the durable orchestrator, a Lambda durable function running the same flows.

The function (`aiwf.handlers.durable.handler`) interprets a task's flow with the step library the
state machine's functions use (lambdas/aiwf/durable_engine.py). It has `durable_config` and
publishes a version: durable executions run a qualified function, and callers start them with
an asynchronous Invoke of that version's ARN. Its role may checkpoint and read the state of its
own executions only; the callers (the task API, GraphQL task control) get `caller_access`:
invoke that version, stop its executions, and complete or heartbeat their callbacks.

With `durableEngine: false` nothing is deployed; `caller_access` then only says so to the
runtime (an empty DURABLE_FUNCTION_ARN), and `durableFunctionArn` is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import Function, FunctionFactory
from .iam import Access, Statement
from .orchestrator import step_runner_access
from .runtime_settings import environment
from .state_store import StateStore

# How long one durable execution (one task, or one redrive of it) may run: a year, the service's
# bound, so a task's own `timeoutSeconds` and its waits' timeouts are what end it.
EXECUTION_TIMEOUT_SECONDS = 366 * 24 * 3600
# Durable execution actions the function performs on its own executions.
OWN_EXECUTION_ACTIONS = ("lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState")
# What callers do to the durable executions of tasks (cancel; resume and heartbeat of a wait).
CALLER_ACTIONS = (
    "lambda:StopDurableExecution",
    "lambda:SendDurableExecutionCallbackSuccess",
    "lambda:SendDurableExecutionCallbackFailure",
    "lambda:SendDurableExecutionCallbackHeartbeat",
)


@dataclass(frozen=True)
class DurableEngineArgs:
    store: StateStore
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    # The task REST API's URL (infra/task_api.py TaskRestApi), of which waits build their callbackUrl.
    task_api_url: pulumi.Input[str]


class DurableEngine(pulumi.ComponentResource):
    function: Function | None
    arn: pulumi.Output[str]
    caller_access: Access

    def __init__(
        self, name: str, args: DurableEngineArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:orchestrator:DurableEngine", name, None, opts)
        if not config.durable_engine:
            self.function = None
            self.arn = pulumi.Output.from_input("")
            self.caller_access = Access(
                environment=environment(durable_function_arn="", default_engine=config.default_engine), statements=()
            )
            self.register_outputs({"durableFunctionArn": self.arn})
            return
        executions = own_executions(config)
        self.function = FunctionFactory(args.code, args.layers, config, self).create(
            f"{name}-function",
            "durable-orchestrator",
            handler="aiwf.handlers.durable.handler",
            description="The durable engine: runs a task's flow as one Lambda durable execution",
            statements=[Statement(OWN_EXECUTION_ACTIONS, (executions,), sid="OwnDurableExecutions")],
            access=step_runner_access(config, args.store, args.task_api_url),
            durable_execution_timeout_seconds=EXECUTION_TIMEOUT_SECONDS,
        )
        # The published version: what callers invoke (a durable function needs a qualified ARN).
        self.arn = self.function.function.qualified_arn
        self.caller_access = Access(
            environment=environment(durable_function_arn=self.arn, default_engine=config.default_engine),
            statements=(
                Statement(("lambda:InvokeFunction",), (self.arn,), sid="StartDurableTasks"),
                Statement(CALLER_ACTIONS, (executions,), sid="ControlDurableTasks"),
            ),
        )
        self.register_outputs({"durableFunctionArn": self.arn})


def own_executions(config: StageConfig) -> pulumi.Output[str]:
    """Every version's executions (`name:*`), built from the name: the function's own ARN would
    make its role depend on it. An unqualified ARN never matches a durable execution ARN."""
    physical = config.name("durable-orchestrator")
    region = aws.get_region_output().region
    account = aws.get_caller_identity_output().account_id
    return pulumi.Output.all(region, account).apply(lambda v: f"arn:aws:lambda:{v[0]}:{v[1]}:function:{physical}:*")
