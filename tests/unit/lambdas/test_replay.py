"""Reading the on-failure record of a DynamoDB stream batch (pure: no AWS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aiwf.replay import StreamBatch, backoff_seconds

# The shape Lambda sends an on-failure destination for a DynamoDB stream batch (AWS's example).
AWS_RECORD = {
    "requestContext": {
        "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 1,
    },
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "version": "1.0",
    "timestamp": "2019-11-14T00:38:06.021Z",
    "DDBStreamBatchInfo": {
        "shardId": "shardId-00000001573689847184-864758bb",
        "startSequenceNumber": "800000000003126276362",
        "endSequenceNumber": "800000000003126276362",
        "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04Z",
        "approximateArrivalOfLastRecord": "2019-11-14T00:38:05Z",
        "batchSize": 1,
        "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388",
    },
}


def test_the_aws_on_failure_record_gives_the_batch_coordinates() -> None:
    batch = StreamBatch.from_message(json.dumps(AWS_RECORD))
    assert batch.stream_arn.endswith("/stream/2019-11-14T00:04:06.388")
    assert batch.shard_id == "shardId-00000001573689847184-864758bb"
    assert batch.start == batch.end == "800000000003126276362"
    assert batch.first_arrival == datetime(2019, 11, 14, 0, 38, 4, tzinfo=UTC)
    assert batch.last_arrival == datetime(2019, 11, 14, 0, 38, 5, tzinfo=UTC)


def test_epoch_arrival_times_are_read_too() -> None:
    record = json.loads(json.dumps(AWS_RECORD))
    record["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"] = 1573691884.5
    del record["DDBStreamBatchInfo"]["approximateArrivalOfLastRecord"]
    batch = StreamBatch.from_message(json.dumps(record))
    assert batch.first_arrival == datetime(2019, 11, 14, 0, 38, 4, 500000, tzinfo=UTC)
    assert batch.last_arrival is None


@pytest.mark.parametrize(
    "body",
    ["not json", "{}", json.dumps({"DDBStreamBatchInfo": {"shardId": "s"}}), json.dumps({"Records": []})],
)
def test_anything_else_is_refused(body: str) -> None:
    with pytest.raises(ValueError, match="not a DynamoDB stream on-failure record"):
        StreamBatch.from_message(body)


def test_backoff_doubles_to_its_ceiling_and_never_past_sqs_maximum() -> None:
    assert [backoff_seconds(n, 30, 900) for n in (1, 2, 3, 4, 5, 6, 100)] == [30, 60, 120, 240, 480, 900, 900]
    assert backoff_seconds(40, 30, 10**9) == 12 * 3600
