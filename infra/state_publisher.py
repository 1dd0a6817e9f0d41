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
from .functions import Function, FunctionFactory
from .iam import Statement
from .runtime_settings import default, environment
from .state_store import StateStore

STREAM_BATCH_SIZE = 25
STREAM_RETRY_ATTEMPTS = 5
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: time for an operator to look
# The replayer's backoff (the runtime's defaults, written out so the deployed values are visible):
# 30 s, 60 s, ... 15 min, then every 15 min; 100 receives take ~24 h.
REPLAY_BACKOFF_SECONDS: int = default("replay_backoff_seconds")
REPLAY_BACKOFF_MAX_SECONDS: int = default("replay_backoff_max_seconds")
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
        self._name = name
        functions = FunctionFactory(args.code, args.layers, config, self)
        self.dead_letters, self.failures = self._queues(config)
        self.function = self._publisher(functions, args)
        self.replayer = self._replayer(functions, args)
        self.register_outputs({"failureQueueUrl": self.failures.url, "deadLetterQueueUrl": self.dead_letters.url})

    def _queues(self, config: StageConfig) -> tuple[aws.sqs.Queue, aws.sqs.Queue]:
        """(final dead-letter queue, on-failure queue): the stream's failures, then the replayer's."""
        name = self._name
        child = pulumi.ResourceOptions(parent=self)
        dead_letters = aws.sqs.Queue(
            f"{name}-dead-letters",
            name=config.name("publish-failures-dlq"),
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        failures = aws.sqs.Queue(
            f"{name}-failures",
            name=config.name("publish-failures"),
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * config.lambda_timeout_seconds,
            redrive_policy=dead_letters.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": REPLAY_MAX_RECEIVES})
            ),
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        return dead_letters, failures

    def _publisher(self, functions: FunctionFactory, args: StatePublisherArgs) -> Function:
        """`state-publisher` and its mapping on the tasks table's stream."""
        name = self._name
        publisher = functions.create(
            f"{name}-function",
            "state-publisher",
            handler="aiwf.handlers.publisher.handler",
            description="Publishes committed task state changes to the Workflow State API",
            environment=environment(graphql_url=args.graphql_url),
            # The tasks table's streams only (Lambda's poller), and the values states link to.
            access=[args.store.access("read-stream", "payloads-read")],
            statements=[
                Statement(("sqs:SendMessage",), (self.failures.arn,), sid="OnFailure"),
                Statement(("appsync:GraphQL",), (args.publish_field_arn,), sid="Publish"),
            ],
        )
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-stream",
            event_source_arn=args.store.tasks.stream_arn,
            function_name=publisher.function.arn,
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[publisher]),
        )
        return publisher

    def _replayer(self, functions: FunctionFactory, args: StatePublisherArgs) -> Function:
        """`state-replayer` and its SQS event source mapping on the on-failure queue."""
        name = self._name
        replayer = functions.create(
            f"{name}-replayer",
            "state-replayer",
            handler="aiwf.handlers.replayer.handler",
            description="Publishes again the state changes the publisher gave up on",
            environment=environment(
                graphql_url=args.graphql_url,
                replay_queue_url=self.failures.url,
                replay_backoff_seconds=REPLAY_BACKOFF_SECONDS,
                replay_backoff_max_seconds=REPLAY_BACKOFF_MAX_SECONDS,
            ),
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
            access=[args.store.access("replay", "payloads-read")],
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
