"""The outbox relay: the tasks table's stream feeds a function that publishes each state change.

DynamoDB holds the committed change before anything is published, so a failed publish never
fails a workflow: the stream retries it. Failures are reported per record (the batch resumes at
the failed one, keeping per-task order), a poisoned batch is bisected, and what still fails after
the retries lands in an on-failure queue for an operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import Function, FunctionArgs
from .iam import Statement
from .state_store import StateStore

STREAM_BATCH_SIZE = 25
STREAM_RETRY_ATTEMPTS = 5
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: time for an operator to look


@dataclass(frozen=True)
class StatePublisherArgs:
    store: StateStore
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    graphql_url: pulumi.Input[str]
    publish_field_arn: pulumi.Input[str]


class StatePublisher(pulumi.ComponentResource):
    failures: aws.sqs.Queue

    def __init__(
        self, name: str, args: StatePublisherArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:api:StatePublisher", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        store = args.store
        self.failures = aws.sqs.Queue(
            f"{name}-failures",
            name=config.name("publish-failures"),
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        stream_arn = store.tasks.stream_arn
        self.function = Function(
            f"{name}-function",
            FunctionArgs(
                name="state-publisher",
                handler="aiwf.handlers.publisher.handler",
                description="Publishes committed task state changes to the Workflow State API",
                code=args.code,
                layers=args.layers,
                environment={
                    **store.environment(config.payload_threshold_bytes),
                    "GRAPHQL_URL": args.graphql_url,
                },
                statements=[
                    # The table's streams (a label with colons ends each stream ARN; a re-enabled
                    # stream gets a new one), never another table's.
                    Statement(
                        ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
                        (store.tasks.arn.apply(lambda arn: f"{arn}/stream/*"),),
                        sid="ReadStream",
                    ),
                    # Part of Lambda's stream polling; IAM scopes ListStreams to no resource type.
                    Statement(("dynamodb:ListStreams",), ("*",), sid="ListStreams"),
                    Statement(("s3:GetObject",), (store.payload_objects(),), sid="Payloads"),
                    Statement(("sqs:SendMessage",), (self.failures.arn,), sid="OnFailure"),
                    Statement(("appsync:GraphQL",), (args.publish_field_arn,), sid="Publish"),
                ],
            ),
            config,
            opts=child,
        )
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-stream",
            event_source_arn=stream_arn,
            function_name=self.function.function.arn,
            starting_position="LATEST",
            batch_size=STREAM_BATCH_SIZE,
            maximum_batching_window_in_seconds=0,
            function_response_types=["ReportBatchItemFailures"],
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=STREAM_RETRY_ATTEMPTS,
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=self.failures.arn
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function]),
        )
        self.register_outputs({"failureQueueUrl": self.failures.url})
