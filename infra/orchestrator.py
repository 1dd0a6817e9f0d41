"""The orchestrator: ProcessSteps and Finalize functions, and the state machine that drives them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import XRAY_ACTIONS, Function, FunctionFactory
from .iam import Access, Statement, assume_role_policy, policy_document
from .orchestrator_asl import build_orchestrator_definition
from .runtime_settings import environment
from .state_store import StateStore

# Vended log delivery for Step Functions is configured through these account-level actions,
# which IAM only grants on "*" (see the Step Functions CloudWatch Logs documentation).
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


def bedrock_statement() -> Statement:
    """llm steps call Bedrock Converse (bedrock:InvokeModel) on foundation models and inference profiles."""
    region = aws.get_region_output().region
    account = aws.get_caller_identity_output().account_id
    return Statement(
        ("bedrock:InvokeModel",),
        (
            # Any region: cross-region inference profiles route to the model in other regions.
            "arn:aws:bedrock:*::foundation-model/*",
            pulumi.Output.all(region, account).apply(lambda v: f"arn:aws:bedrock:{v[0]}:{v[1]}:inference-profile/*"),
        ),
        sid="InvokeModels",
    )


def step_runner_access(config: StageConfig, store: StateStore, task_api_url: pulumi.Input[str]) -> list[Access]:
    """What every function that runs a flow's steps needs, whichever engine calls it (process-steps,
    the durable orchestrator): the stage's model settings, Bedrock when the stage uses it, the task
    API's URL (a wait's notification gives its `callbackUrl`), and the task store as the step loop
    uses it (tasks, executions, flows, payloads)."""
    llm = Access(
        environment=environment(
            llm_provider=config.llm_provider, llm_endpoint=config.llm_endpoint or None, task_api_url=task_api_url
        ),
        statements=(bedrock_statement(),) if config.llm_provider == "bedrock" else (),
    )
    return [llm, store.access("write-tasks", "record-execution", "read-flows", "payloads-write")]


def machine_arns(config: StageConfig) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """(the Standard machine's ARN, the ARN pattern of its executions), built from the machine's
    name: the machine's own ARN would make process-steps' role depend on the machine."""
    machine_name = config.name("orchestrator")
    region = aws.get_region_output().region
    account = aws.get_caller_identity_output().account_id
    machine_arn = pulumi.Output.all(region, account).apply(
        lambda v: f"arn:aws:states:{v[0]}:{v[1]}:stateMachine:{machine_name}"
    )
    executions_arn = pulumi.Output.all(region, account).apply(
        lambda v: f"arn:aws:states:{v[0]}:{v[1]}:execution:{machine_name}:*"
    )
    return machine_arn, executions_arn


@dataclass(frozen=True)
class OrchestratorArgs:
    store: StateStore
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    # The task REST API's URL (infra/task_api.py TaskRestApi), of which waits build their callbackUrl.
    task_api_url: pulumi.Input[str]


class Orchestrator(pulumi.ComponentResource):
    """The step functions (process-steps, finalize), the role both machines run as, the Standard
    and Express machines built from one definition, and the reconciler of executions that end
    outside any step."""

    state_machine: aws.sfn.StateMachine
    express_state_machine: aws.sfn.StateMachine

    def __init__(
        self,
        name: str,
        args: OrchestratorArgs,
        config: StageConfig,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aiwf:orchestrator:Orchestrator", name, None, opts)
        self._name, self._config = name, config
        functions = FunctionFactory(args.code, args.layers, config, self)
        # finalize and the reconciler end tasks; process-steps also reads flows and records executions
        ends_tasks = args.store.access("write-tasks", "payloads-write")
        self.process = self._process_steps(functions, args.store, args.task_api_url)
        self.finalize = functions.create(
            f"{name}-finalize",
            "finalize",
            handler="aiwf.handlers.orchestrator.finalize",
            description="Records the normalized error of a task that failed outside a step",
            access=[ends_tasks],
        )
        function_arns = (self.process.function.arn, self.finalize.function.arn)
        role, policy = self._machine_role(function_arns)
        self.state_machine = self._machine(name, "orchestrator", "STANDARD", role, policy, function_arns)
        # Quick runs (POST /tasks with "wait") of flows without waits or polls: StartSyncExecution.
        self.express_state_machine = self._machine(
            f"{name}-express", "orchestrator-express", "EXPRESS", role, policy, function_arns
        )
        self._status_reconciler(functions, ends_tasks)
        self.register_outputs(
            {"stateMachineArn": self.state_machine.arn, "expressStateMachineArn": self.express_state_machine.arn}
        )

    def _process_steps(
        self, functions: FunctionFactory, store: StateStore, task_api_url: pulumi.Input[str]
    ) -> Function:
        """process-steps: runs the steps, and hands a task over to a fresh Standard execution."""
        machine_arn, executions_arn = machine_arns(self._config)
        return functions.create(
            f"{self._name}-process",
            "process-steps",
            handler="aiwf.handlers.orchestrator.process",
            description="Runs a task's consecutive inline steps in one invocation",
            # where a quick run goes on when it leaves the Express machine (aiwf.express)
            environment=environment(state_machine_arn=machine_arn),
            statements=[
                # continuation: count this execution's history events, start the next (recorded on the task)
                Statement(("states:GetExecutionHistory",), (executions_arn,), sid="HistoryQuota"),
                # ...and a quick run that leaves the Express machine goes on there too (aiwf.express)
                Statement(("states:StartExecution",), (machine_arn,), sid="ContinueAsNew"),
            ],
            access=step_runner_access(self._config, store, task_api_url),
        )

    def _machine_role(self, function_arns: tuple[pulumi.Output[str], ...]) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The role both machines run as: invoke the step functions (any version), deliver logs."""
        name, config = self._name, self._config
        child = pulumi.ResourceOptions(parent=self)
        invoke_targets = (*function_arns, *(arn.apply(lambda a: f"{a}:*") for arn in function_arns))
        role = aws.iam.Role(
            f"{name}-role",
            name=config.name("orchestrator"),
            assume_role_policy=assume_role_policy("states.amazonaws.com"),
            opts=child,
        )
        statements = [
            Statement(("lambda:InvokeFunction",), invoke_targets, sid="InvokeStepFunctions"),
            Statement(LOG_DELIVERY_ACTIONS, ("*",), sid="LogDelivery"),
        ]
        if config.tracing:
            statements.append(
                Statement((*XRAY_ACTIONS, "xray:GetSamplingRules", "xray:GetSamplingTargets"), ("*",), sid="Tracing")
            )
        policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(statements), opts=child)
        return role, policy

    def _machine(
        self,
        resource_name: str,
        suffix: str,
        machine_type: str,
        role: aws.iam.Role,
        policy: aws.iam.RolePolicy,
        function_arns: tuple[pulumi.Output[str], ...],
    ) -> aws.sfn.StateMachine:
        """One of the two machines and its log group: the same builder, so both run the same protocol."""
        config = self._config
        express = machine_type == "EXPRESS"
        logs = aws.cloudwatch.LogGroup(
            f"{resource_name}-logs",
            name=f"/aws/vendedlogs/states/{config.name(suffix)}",
            retention_in_days=config.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        definition = pulumi.Output.all(*function_arns).apply(
            lambda arns: json.dumps(build_orchestrator_definition(arns[0], arns[1], express=express), indent=2)
        )
        return aws.sfn.StateMachine(
            resource_name,
            name=config.name(suffix),
            type=machine_type,
            role_arn=role.arn,
            definition=definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                log_destination=logs.arn.apply(lambda arn: f"{arn}:*"),
                include_execution_data=config.log_level == "DEBUG",
                level="ALL" if config.log_level == "DEBUG" else "ERROR",
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=config.tracing),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _status_reconciler(self, functions: FunctionFactory, ends_tasks: Access) -> None:
        """Executions that end FAILED / TIMED_OUT / ABORTED outside any Lambda still end their task."""
        name, config = self._name, self._config
        child = pulumi.ResourceOptions(parent=self)
        self.reconciler = functions.create(
            f"{name}-reconciler",
            "status-reconciler",
            handler="aiwf.handlers.orchestrator.reconcile_status",
            description="Marks tasks whose execution failed, timed out or was aborted outside a step",
            access=[ends_tasks],
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-status-changes",
            name=config.name("execution-status"),
            description="Orchestrator executions that ended without succeeding",
            event_pattern=self.state_machine.arn.apply(
                lambda arn: json.dumps(
                    {
                        "source": ["aws.states"],
                        "detail-type": ["Step Functions Execution Status Change"],
                        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [arn]},
                    }
                )
            ),
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-reconciler-invoke",
            action="lambda:InvokeFunction",
            function=self.reconciler.function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-status-target",
            rule=rule.name,
            arn=self.reconciler.function.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=86400, maximum_retry_attempts=185
            ),
            opts=child,
        )
