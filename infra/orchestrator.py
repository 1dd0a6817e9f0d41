"""The orchestrator: ProcessSteps and Finalize functions, and the state machine that drives them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import XRAY_ACTIONS, Function, FunctionArgs
from .iam import Access, Statement, assume_role_policy, policy_document
from .orchestrator_asl import build_orchestrator_definition
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


def step_runner_access(config: StageConfig, store: StateStore) -> list[Access]:
    """What every function that runs a flow's steps needs, whichever engine calls it (process-steps,
    the durable orchestrator): the stage's model settings, Bedrock when the stage uses it, and the
    task store as the step loop uses it (tasks, executions, flows, payloads)."""
    llm = Access(
        environment={
            "LLM_PROVIDER": config.llm_provider,
            **({"LLM_ENDPOINT": config.llm_endpoint} if config.llm_endpoint else {}),
        },
        statements=(bedrock_statement(),) if config.llm_provider == "bedrock" else (),
    )
    return [llm, store.access("write-tasks", "record-execution", "read-flows", "payloads-write")]


@dataclass(frozen=True)
class OrchestratorArgs:
    store: StateStore
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]


class Orchestrator(pulumi.ComponentResource):
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
        child = pulumi.ResourceOptions(parent=self)
        store = args.store
        # finalize and the reconciler end tasks; process-steps also reads flows and records executions
        ends_tasks = store.access("write-tasks", "payloads-write")
        machine_name = config.name("orchestrator")
        region = aws.get_region_output().region
        account = aws.get_caller_identity_output().account_id
        # Built from the name: the machine's own ARN would make the role depend on the machine.
        machine_arn = pulumi.Output.all(region, account).apply(
            lambda v: f"arn:aws:states:{v[0]}:{v[1]}:stateMachine:{machine_name}"
        )
        executions_arn = pulumi.Output.all(region, account).apply(
            lambda v: f"arn:aws:states:{v[0]}:{v[1]}:execution:{machine_name}:*"
        )
        process_statements = [
            # continuation: count this execution's history events, start the next (recorded on the task)
            Statement(("states:GetExecutionHistory",), (executions_arn,), sid="HistoryQuota"),
            # ...and a quick run that leaves the Express machine goes on there too (aiwf.express)
            Statement(("states:StartExecution",), (machine_arn,), sid="ContinueAsNew"),
        ]
        self.process = Function(
            f"{name}-process",
            FunctionArgs(
                name="process-steps",
                handler="aiwf.handlers.orchestrator.process",
                description="Runs a task's consecutive inline steps in one invocation",
                code=args.code,
                layers=args.layers,
                # where a quick run goes on when it leaves the Express machine (aiwf.express)
                environment={"STATE_MACHINE_ARN": machine_arn},
                statements=process_statements,
                access=step_runner_access(config, store),
            ),
            config,
            opts=child,
        )
        self.finalize = Function(
            f"{name}-finalize",
            FunctionArgs(
                name="finalize",
                handler="aiwf.handlers.orchestrator.finalize",
                description="Records the normalized error of a task that failed outside a step",
                code=args.code,
                layers=args.layers,
                access=[ends_tasks],
            ),
            config,
            opts=child,
        )
        function_arns = (self.process.function.arn, self.finalize.function.arn)
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
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/vendedlogs/states/{config.name('orchestrator')}",
            retention_in_days=config.log_retention_days,
            opts=child,
        )

        def machine(resource_name: str, machine_type: str, logs: aws.cloudwatch.LogGroup) -> aws.sfn.StateMachine:
            """One of the two machines: the same builder, so both run the same protocol."""
            express = machine_type == "EXPRESS"
            definition = pulumi.Output.all(*function_arns).apply(
                lambda arns: json.dumps(build_orchestrator_definition(arns[0], arns[1], express=express), indent=2)
            )
            return aws.sfn.StateMachine(
                resource_name,
                name=config.name("orchestrator-express" if express else "orchestrator"),
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

        self.state_machine = machine(name, "STANDARD", log_group)
        # Quick runs (POST /tasks with "wait") of flows without waits or polls: StartSyncExecution.
        express_logs = aws.cloudwatch.LogGroup(
            f"{name}-express-logs",
            name=f"/aws/vendedlogs/states/{config.name('orchestrator-express')}",
            retention_in_days=config.log_retention_days,
            opts=child,
        )
        self.express_state_machine = machine(f"{name}-express", "EXPRESS", express_logs)
        self._status_reconciler(name, args, config, ends_tasks)
        self.register_outputs(
            {"stateMachineArn": self.state_machine.arn, "expressStateMachineArn": self.express_state_machine.arn}
        )

    def _status_reconciler(
        self,
        name: str,
        args: OrchestratorArgs,
        config: StageConfig,
        ends_tasks: Access,
    ) -> None:
        """Executions that end FAILED / TIMED_OUT / ABORTED outside any Lambda still end their task."""
        child = pulumi.ResourceOptions(parent=self)
        self.reconciler = Function(
            f"{name}-reconciler",
            FunctionArgs(
                name="status-reconciler",
                handler="aiwf.handlers.orchestrator.reconcile_status",
                description="Marks tasks whose execution failed, timed out or was aborted outside a step",
                code=args.code,
                layers=args.layers,
                access=[ends_tasks],
            ),
            config,
            opts=child,
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
