"""The outbox relay: the tasks table's stream feeds a function that publishes each state change.

DynamoDB holds the committed change before anything is published, so a failed publish never
fails a workflow: the stream retries it. Failures are reported per record (the batch resumes at
the failed one, keeping per-task order), a poisoned batch is bisected, and what still fails after
the retries lands in the on-failure queue `publish-failures` as the batch's coordinates.

A replayer drains that queue: `state-replayer` reads each batch again (from the stream, else
from the history table) and publishes it through the publisher's own code path, so an outage of
the Workflow State API delays state changes but loses none. It is wired as an SQS event source
mapping rather than a schedule because the mapping polls continuously at no extra cost, hands a
message over as soon as it is visible (a replay starts seconds after the dead-lettering), deletes
exactly the messages the function did not report as failed (`ReportBatchItemFailures`), and
counts receives for the queue's redrive policy; a schedule would add a fixed delay and need its
own receive/delete/visibility bookkeeping. The function backs a failed message off itself
(ChangeMessageVisibility, doubling from 30 s to 15 min), so a long outage costs a few calls per
message an hour; after `REPLAY_MAX_RECEIVES` receives (about a day, the stream's own retention)
the message moves to `publish-failures-dlq`, which alarms and keeps it 14 days for an operator.
"""

from __future__ import annotations

import json
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
# The replayer's backoff: 30 s, 60 s, ... 15 min, then every 15 min; 100 receives take ~24 h.
REPLAY_BACKOFF_SECONDS = 30
REPLAY_BACKOFF_MAX_SECONDS = 900
REPLAY_MAX_RECEIVES = 100
REPLAY_BATCH_SIZE = 10
# Lambda requires the queue's visibility timeout to cover the function's timeout; AWS recommends
# six times it, so a message a crashed or timed-out invocation held is not redelivered mid-flight.
VISIBILITY_TIMEOUT_FACTOR = 6
# At most this many replays at once: a backlog drains without flooding the API it waits for.
REPLAY_MAX_CONCURRENCY = 2


@dataclass(frozen=True)
class StatePublisherArgs:
    store: StateStore
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    graphql_url: pulumi.Input[str]
    publish_field_arn: pulumi.Input[str]


class StatePublisher(pulumi.ComponentResource):
    failures: aws.sqs.Queue
    dead_letters: aws.sqs.Queue

    def __init__(
        self, name: str, args: StatePublisherArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:api:StatePublisher", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        store = args.store
        self.dead_letters = aws.sqs.Queue(
            f"{name}-dead-letters",
            name=config.name("publish-failures-dlq"),
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.failures = aws.sqs.Queue(
            f"{name}-failures",
            name=config.name("publish-failures"),
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * config.lambda_timeout_seconds,
            redrive_policy=self.dead_letters.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": REPLAY_MAX_RECEIVES})
            ),
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
                environment={"GRAPHQL_URL": args.graphql_url},
                # The tasks table's streams only (Lambda's poller), and the values states link to.
                access=[store.access("read-stream", "payloads-read")],
                statements=[
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
        self.replayer = self._replayer(name, args, config)
        self.register_outputs({"failureQueueUrl": self.failures.url, "deadLetterQueueUrl": self.dead_letters.url})

    def _replayer(self, name: str, args: StatePublisherArgs, config: StageConfig) -> Function:
        """`state-replayer` and its SQS event source mapping on the on-failure queue."""
        store = args.store
        replayer = Function(
            f"{name}-replayer",
            FunctionArgs(
                name="state-replayer",
                handler="aiwf.handlers.replayer.handler",
                description="Publishes again the state changes the publisher gave up on",
                code=args.code,
                layers=args.layers,
                environment={
                    "GRAPHQL_URL": args.graphql_url,
                    "REPLAY_QUEUE_URL": self.failures.url,
                    "REPLAY_BACKOFF_SECONDS": str(REPLAY_BACKOFF_SECONDS),
                    "REPLAY_BACKOFF_MAX_SECONDS": str(REPLAY_BACKOFF_MAX_SECONDS),
                },
                statements=[
                    # The event source mapping's polling, and the function's own backoff.
                    Statement(
                        (
                            "sqs:ReceiveMessage",
                            "sqs:DeleteMessage",
                            "sqs:GetQueueAttributes",
                            "sqs:ChangeMessageVisibility",
                        ),
                        (self.failures.arn,),
                        sid="OnFailureQueue",
                    ),
                    Statement(("appsync:GraphQL",), (args.publish_field_arn,), sid="Publish"),
                ],
                # The dead-lettered batches read again: from the stream, else from the history.
                access=[store.access("replay", "payloads-read")],
            ),
            config,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.replay_mapping = aws.lambda_.EventSourceMapping(
            f"{name}-replay",
            event_source_arn=self.failures.arn,
            function_name=replayer.function.arn,
            batch_size=REPLAY_BATCH_SIZE,
            maximum_batching_window_in_seconds=0,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=REPLAY_MAX_CONCURRENCY),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[replayer]),
        )
        return replayer
