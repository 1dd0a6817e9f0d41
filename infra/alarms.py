"""Alarms an operator needs at 3 a.m.: failed or timed-out tasks, function errors, undelivered
and unreplayed state changes, API 5xx. All go to one SNS topic per stage; subscribe the on-call endpoint to it
(output `alarmTopicArn`). Every stage declares the same alarms; `alarmActions` says whether they
notify, so dev stays quiet while prod pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import Function

FIVE_MINUTES = 300


@dataclass(frozen=True)
class AlarmsArgs:
    state_machine: aws.sfn.StateMachine
    functions: dict[str, Function]
    publish_failures: aws.sqs.Queue
    publish_dead_letters: aws.sqs.Queue
    rest_api: aws.apigateway.RestApi
    rest_stage: aws.apigateway.Stage
    graphql_api: aws.appsync.GraphQLApi


class Alarms(pulumi.ComponentResource):
    topic: aws.sns.Topic

    def __init__(
        self, name: str, args: AlarmsArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:ops:Alarms", name, None, opts)
        self._name, self._config = name, config
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=config.name("alarms"),
            kms_master_key_id="alias/aws/sns",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._task_alarms(args)
        self._function_alarms(args.functions)
        self._state_change_alarms(args)
        self._api_alarms(args)
        self.register_outputs({"topicArn": self.topic.arn})

    def _task_alarms(self, args: AlarmsArgs) -> None:
        self._alarm(
            "tasks-failed",
            "Tasks whose execution failed, a flow's timeoutSeconds included (see docs/operations.md)",
            "AWS/States",
            "ExecutionsFailed",
            {"StateMachineArn": args.state_machine.arn},
        )

    def _function_alarms(self, functions: dict[str, Function]) -> None:
        for suffix, function in functions.items():
            self._alarm(
                f"{suffix}-errors",
                f"Errors of the {suffix} function",
                "AWS/Lambda",
                "Errors",
                {"FunctionName": function.function.name},
            )

    def _state_change_alarms(self, args: AlarmsArgs) -> None:
        # Batches sent to the on-failure queue: the replayer takes them at once and keeps them
        # invisible while it backs off, so the queue's visible count would hardly ever show them.
        self._alarm(
            "state-changes-undelivered",
            "State changes the publisher gave up on (on-failure queue; state-replayer publishes them again)",
            "AWS/SQS",
            "NumberOfMessagesSent",
            {"QueueName": args.publish_failures.name},
        )
        self._alarm(
            "state-changes-unreplayed",
            "State changes the replayer gave up on after about a day (final dead-letter queue)",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": args.publish_dead_letters.name},
            statistic="Maximum",
        )

    def _api_alarms(self, args: AlarmsArgs) -> None:
        self._alarm(
            "task-api-5xx",
            "Server errors of the task API",
            "AWS/ApiGateway",
            "5XXError",
            {"ApiName": args.rest_api.name, "Stage": args.rest_stage.stage_name},
        )
        self._alarm(
            "graphql-5xx",
            "Server errors of the Workflow State API",
            "AWS/AppSync",
            "5XXError",
            {"GraphQLAPIId": args.graphql_api.id},
        )

    def _alarm(
        self,
        suffix: str,
        description: str,
        namespace: str,
        metric: str,
        dimensions: dict[str, pulumi.Input[str]],
        statistic: str = "Sum",
    ) -> aws.cloudwatch.MetricAlarm:
        """One alarm: at least one in five minutes, notifying the topic when the stage says so."""
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{suffix}",
            name=self._config.name(suffix),
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic=statistic,
            period=FIVE_MINUTES,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            actions_enabled=self._config.alarm_actions,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self),
        )
