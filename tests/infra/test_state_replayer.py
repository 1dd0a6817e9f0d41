"""The replayer of the publisher's on-failure queue: wired to the queue, bounded by a final
dead-letter queue with an alarm, and allowed only what it uses."""

from __future__ import annotations

import json
from typing import Any

from infra.state_access import store_schema
from tests.infra.stackmodel import Resource, Stack, as_list

MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
QUEUE = "aws:sqs/queue:Queue"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TABLE = "aws:dynamodb/table:Table"
REPLAYER_HANDLER = "aiwf.handlers.replayer.handler"


def _queue(stack: Stack, suffix: str) -> Resource:
    return next(q for q in stack.of_type(QUEUE) if q.inputs["name"] == f"aiwf-{stack.stage}-{suffix}")


def _table(stack: Stack, suffix: str) -> Resource:
    return next(t for t in stack.of_type(TABLE) if t.inputs["name"] == f"aiwf-{stack.stage}-{suffix}")


def _grants(stack: Stack, role_arn: str) -> dict[str, set[str]]:
    """Every action the role may call, with the resources it may call it on."""
    grants: dict[str, set[str]] = {}
    for statement in stack.statements_of_role(stack.role_by_arn(role_arn)):
        for action in as_list(statement["Action"]):
            grants.setdefault(action, set()).update(as_list(statement["Resource"]))
    return grants


def test_the_on_failure_queue_feeds_the_replayer_with_per_message_failures(stack: Stack) -> None:
    failures = _queue(stack, "publish-failures")
    replayer = stack.function(REPLAYER_HANDLER)
    mappings = [m for m in stack.of_type(MAPPING) if m.inputs["eventSourceArn"] == failures.outputs["arn"]]
    assert len(mappings) == 1
    mapping = mappings[0].inputs
    assert mapping["functionName"] == replayer.outputs["arn"]
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= mapping["batchSize"] <= 10
    assert mapping["scalingConfig"]["maximumConcurrency"] >= 2  # the SQS minimum
    # Lambda refuses a queue whose visibility timeout is shorter than the function's timeout.
    assert failures.inputs["visibilityTimeoutSeconds"] >= replayer.inputs["timeout"]
    variables = replayer.inputs["environment"]["variables"]
    assert variables["REPLAY_QUEUE_URL"] == failures.outputs["url"]
    assert int(variables["REPLAY_BACKOFF_SECONDS"]) <= int(variables["REPLAY_BACKOFF_MAX_SECONDS"]) <= 12 * 3600


def test_a_message_that_keeps_failing_ends_in_a_final_queue_that_alarms(stack: Stack) -> None:
    failures, final = _queue(stack, "publish-failures"), _queue(stack, "publish-failures-dlq")
    redrive = json.loads(failures.inputs["redrivePolicy"])
    assert redrive["deadLetterTargetArn"] == final.outputs["arn"]
    assert 10 <= redrive["maxReceiveCount"] <= 1000
    for queue in (failures, final):
        assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600  # the SQS maximum
        assert queue.inputs["sqsManagedSseEnabled"] is True
    watched = {
        alarm.inputs["dimensions"]["QueueName"]
        for alarm in stack.of_type(METRIC_ALARM)
        if alarm.inputs["namespace"] == "AWS/SQS"
    }
    assert final.inputs["name"] in watched and failures.inputs["name"] in watched


def test_the_replayer_may_only_drain_its_queue_read_the_stream_and_history_and_publish(stack: Stack) -> None:
    replayer = stack.function(REPLAYER_HANDLER)
    failures = _queue(stack, "publish-failures")
    tasks, history = _table(stack, "tasks"), _table(stack, "history")
    bucket = next(b for b in stack.of_type("aws:s3/bucket:Bucket"))
    api = stack.one("aws:appsync/graphQLApi:GraphQLApi")
    grants = _grants(stack, replayer.inputs["role"])
    own_logs = {action: resources for action, resources in grants.items() if action.startswith("logs:")}
    assert set(own_logs) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    expected: dict[str, set[str]] = {
        "sqs:ReceiveMessage": {failures.outputs["arn"]},
        "sqs:DeleteMessage": {failures.outputs["arn"]},
        "sqs:GetQueueAttributes": {failures.outputs["arn"]},
        "sqs:ChangeMessageVisibility": {failures.outputs["arn"]},
        "dynamodb:GetShardIterator": {f"{tasks.outputs['arn']}/stream/*"},
        "dynamodb:GetRecords": {f"{tasks.outputs['arn']}/stream/*"},
        "dynamodb:Scan": {history.outputs["arn"]},
        "dynamodb:GetItem": {tasks.outputs["arn"]},
        "s3:GetObject": {f"{bucket.outputs['arn']}/{store_schema()['payloads']['keyPrefix']}*"},
        "appsync:GraphQL": {f"{api.outputs['arn']}/types/Mutation/fields/updateWorkflowState"},
    }
    rest: dict[str, Any] = {a: r for a, r in grants.items() if not a.startswith(("logs:", "xray:"))}
    assert rest == expected
    # The final queue is for operators: the replayer never reads it, nobody sends to it but SQS.
    final = _queue(stack, "publish-failures-dlq").outputs["arn"]
    assert not any(final in resources for resources in grants.values())
