"""What a dead-lettered stream batch held, read again: the states the replayer publishes once more.

When the publisher cannot reach the Workflow State API, its event source mapping retries a batch
a few times and then sends the batch's coordinates (not its records) to the on-failure queue:
`DDBStreamBatchInfo` with the stream ARN, the shard and the first and last sequence numbers. This
module turns such a message back into the committed states it stands for:

- from the stream itself (GetShardIterator AT_SEQUENCE_NUMBER, then GetRecords up to the last
  sequence number): the very records the publisher saw, in shard order, so per-task order holds;
- when the stream no longer has them (DynamoDB Streams keep records 24 hours; a disabled and
  re-enabled stream is a new stream), from the history table, which keeps every state by
  `(taskId, seq)`: the records are gone, so are their keys, and the batch's approximate arrival
  times are all that is left; every history record written in that window (with a minute's
  slack on each side, the stream's timestamps are approximate) is replayed. That may include
  states that were delivered already: listeners drop them by `seq`.

Nothing here publishes: `aiwf.handlers.replayer` does, through the publisher's own code path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from .aws import client
from .repository import TaskRepository
from .workflow_state import graphql_state, is_state_change, state_from_image

# GetRecords may answer an empty page in an open shard before the records further on; a bounded
# number of empty reads, then the message is tried again later.
MAX_EMPTY_READS = 10
PAGE_LIMIT = 1000
HISTORY_SLACK = timedelta(seconds=60)
# Errors that mean the stream no longer holds the batch: trimmed after 24 h, or a stream (or shard)
# that does not exist any more.
GONE = frozenset({"TrimmedDataAccessException", "ResourceNotFoundException"})


class StreamGone(Exception):
    """The stream no longer holds the batch's records."""


class IncompleteRead(Exception):
    """The stream did not return the batch up to its last record this time; try the message later."""


@dataclass(frozen=True)
class StreamBatch:
    """The coordinates of one dead-lettered batch (`DDBStreamBatchInfo` of the on-failure record)."""

    stream_arn: str
    shard_id: str
    start: str
    end: str
    first_arrival: datetime | None = None
    last_arrival: datetime | None = None

    @classmethod
    def from_message(cls, body: str) -> StreamBatch:
        """Parse an on-failure message; ValueError when it is not one of a DynamoDB stream batch."""
        try:
            info = json.loads(body)["DDBStreamBatchInfo"]
            batch = cls(
                stream_arn=str(info["streamArn"]),
                shard_id=str(info["shardId"]),
                start=str(info["startSequenceNumber"]),
                end=str(info["endSequenceNumber"]),
                first_arrival=_instant(info.get("approximateArrivalOfFirstRecord")),
                last_arrival=_instant(info.get("approximateArrivalOfLastRecord")),
            )
            int(batch.start), int(batch.end)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a DynamoDB stream on-failure record: {exc!r}") from exc
        return batch


def _instant(value: Any) -> datetime | None:
    """AWS writes ISO 8601 text (`2019-11-14T00:13:49.717Z`); epoch seconds are accepted too."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def stream_records(batch: StreamBatch) -> list[dict[str, Any]]:
    """The batch's records from the stream, first to last, in shard order."""
    streams = client("dynamodbstreams")
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=batch.stream_arn,
            ShardId=batch.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=batch.start,
        ).get("ShardIterator")
    except ClientError as exc:
        if exc.response["Error"]["Code"] in GONE:
            raise StreamGone(str(exc)) from exc
        raise
    last = int(batch.end)
    records: list[dict[str, Any]] = []
    empty = 0
    while iterator:
        try:
            page = streams.get_records(ShardIterator=iterator, Limit=PAGE_LIMIT)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in GONE:
                raise StreamGone(str(exc)) from exc
            raise
        for record in page.get("Records", []):
            if int(record["dynamodb"]["SequenceNumber"]) > last:
                return records
            records.append(record)
        if records and int(records[-1]["dynamodb"]["SequenceNumber"]) == last:
            return records
        if not page.get("Records"):
            empty += 1
            if empty >= MAX_EMPTY_READS:
                raise IncompleteRead(f"{len(records)} records read, the last ({batch.end}) not reached")
        iterator = page.get("NextShardIterator")
    return records  # the shard closed before the last sequence number: everything it had


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def history_states(batch: StreamBatch) -> list[dict[str, Any]]:
    """Every history record written in the batch's time window, per task in `seq` order."""
    if batch.first_arrival is None:
        raise StreamGone("the stream no longer has the batch and the message carries no arrival time")
    repo = TaskRepository()
    low = _iso(batch.first_arrival - HISTORY_SLACK)
    high = _iso((batch.last_arrival or batch.first_arrival) + HISTORY_SLACK)
    items = repo.history_between(low, high)
    parents: dict[str, str | None] = {}
    for item in items:
        if item.get("branchId") is not None:  # a branch's record: subscribers know it by its parent task
            task_id = item["taskId"]
            if task_id not in parents:
                parents[task_id] = repo.branch_parent(task_id)
            if parents[task_id]:
                item["branchOf"] = parents[task_id]
    items.sort(key=lambda item: (item["taskId"], int(item["seq"])))
    return [graphql_state(item) for item in items]


def states_of(batch: StreamBatch) -> list[dict[str, Any]]:
    """The states a dead-lettered batch stands for, in the order to publish them."""
    try:
        records = stream_records(batch)
    except StreamGone:
        return history_states(batch)
    return [state_from_image(record["dynamodb"]["NewImage"]) for record in records if is_state_change(record)]


def backoff_seconds(receive_count: int, base: int, ceiling: int) -> int:
    """How long a message that failed its `receive_count`-th replay stays invisible: doubling from
    `base`, at most `ceiling` (and SQS's own 12-hour maximum)."""
    exponent = max(0, min(receive_count - 1, 30))
    return int(min(base * 2**exponent, ceiling, 12 * 3600))
