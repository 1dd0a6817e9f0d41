"""One Lambda function with its own role, log group and nothing else it does not use.

Components make theirs through a `FunctionFactory` bound to what every function of the stack
shares (the code package, the dependency layer, the stage config) and to the component itself
as parent, so each call says only what is particular to one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from . import runtime_settings
from .config import StageConfig
from .iam import Access, Statement, assume_role_policy, policy_document

RUNTIME = "python3.12"
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


@dataclass(frozen=True)
class FunctionArgs:
    """`access` (environment and statements from the owners of the resources it uses, e.g.
    `StateStore.access`) and `statements` are the only permissions the function gets beyond
    writing its own logs."""

    name: str
    handler: str
    description: str
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)
    timeout_seconds: int | None = None
    access: Sequence[Access] = ()
    # A Lambda durable function (infra/durable_engine.py): its durable execution timeout. Durable
    # functions are invoked by a qualified ARN, so they also publish a version.
    durable_execution_timeout_seconds: int | None = None

    def __post_init__(self) -> None:
        if "." not in self.handler:
            raise ValueError(f"handler {self.handler!r} must be module.function")


class Function(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: aws.iam.Role

    def __init__(
        self, name: str, args: FunctionArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:functions:Function", name, None, opts)
        physical = config.name(args.name)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{physical}",
            retention_in_days=config.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role, self.policy = self._role(name, physical, args, config, log_group)
        self.function = aws.lambda_.Function(
            name,
            name=physical,
            description=args.description,
            runtime=RUNTIME,
            handler=args.handler,
            code=args.code,
            layers=args.layers,
            role=self.role.arn,
            timeout=args.timeout_seconds or config.lambda_timeout_seconds,
            memory_size=config.lambda_memory_mb,
            architectures=["x86_64"],
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=_variables(physical, args, config)),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active" if config.tracing else "PassThrough"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=log_group.name),
            **_durable(args, config),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, log_group]),
        )
        self.register_outputs({"arn": self.function.arn, "name": self.function.name, "roleArn": self.role.arn})

    def _role(
        self, name: str, physical: str, args: FunctionArgs, config: StageConfig, log_group: aws.cloudwatch.LogGroup
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The function's own role: its log streams, what `access` and `statements` grant, X-Ray."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            name=physical,
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            description=f"Runs {physical} only",
            opts=child,
        )
        statements = [
            Statement(
                ("logs:CreateLogStream", "logs:PutLogEvents"),
                (log_group.arn.apply(lambda arn: f"{arn}:*"),),
                sid="OwnLogs",
            ),
            *(statement for access in args.access for statement in access.statements),
            *args.statements,
        ]
        if config.tracing:
            statements.append(Statement(XRAY_ACTIONS, ("*",), sid="Tracing"))
        policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(statements), opts=child)
        return role, policy


def _variables(physical: str, args: FunctionArgs, config: StageConfig) -> dict[str, pulumi.Input[str]]:
    """Every function's settings (stage, logging, egress), then what its access and its own role add."""
    return {
        **runtime_settings.environment(stage=config.stage, log_level=config.log_level, service_name=physical),
        # Every function gets the egress policy, not only those that call out today.
        **config.egress.environment(),
        **config.limits.environment(),
        **{name: value for access in args.access for name, value in access.environment.items()},
        **args.environment,
    }


def _durable(args: FunctionArgs, config: StageConfig) -> dict[str, object]:
    """`durable_config` and a published version for a durable function; nothing for any other."""
    if args.durable_execution_timeout_seconds is None:
        return {}
    return {
        "durable_config": aws.lambda_.FunctionDurableConfigArgs(
            execution_timeout=args.durable_execution_timeout_seconds,
            retention_period=config.durable_retention_days,
        ),
        "publish": True,
    }


@dataclass(frozen=True)
class FunctionFactory:
    """Makes a component's functions: bound once to the stack's code package and layers, the stage
    config and the component (every function is its child), so a call names only the function's
    own handler, description and permissions."""

    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    config: StageConfig
    parent: pulumi.Resource

    def create(
        self,
        resource_name: str,
        name: str,
        *,
        handler: str,
        description: str,
        access: Sequence[Access] = (),
        statements: Sequence[Statement] = (),
        environment: dict[str, pulumi.Input[str]] | None = None,
        timeout_seconds: int | None = None,
        durable_execution_timeout_seconds: int | None = None,
    ) -> Function:
        """Function `resource_name` (its Pulumi name) deployed as `aiwf-<stage>-<name>`."""
        args = FunctionArgs(
            name=name,
            handler=handler,
            description=description,
            code=self.code,
            layers=self.layers,
            environment=dict(environment or {}),
            statements=list(statements),
            timeout_seconds=timeout_seconds,
            access=access,
            durable_execution_timeout_seconds=durable_execution_timeout_seconds,
        )
        return Function(resource_name, args, self.config, opts=pulumi.ResourceOptions(parent=self.parent))
