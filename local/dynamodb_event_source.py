"""The Lambda event source mapping for DynamoDB streams: a poller per mapping, as Lambda's.

moto's `StreamShard.add` (5.2.5) invokes every mapped function synchronously inside the write,
resends the whole backlog until an invocation "succeeds", and ignores batch item failures,
retries, bisection and on-failure destinations. In AWS the write returns at once and Lambda's
poller delivers the shard in order, retrying. The replacement records the change exactly as moto
does (GetRecords still works) and queues it for a delivery thread per event source mapping:
batches in shard order, per-item failures (`ReportBatchItemFailures`), retries with backoff,
bisection, and the on-failure destination (an SQS queue) with AWS's batch coordinates.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from local.lambda_invoke import invoke_function
from local.lambda_runtime import InvocationResult
from local.moto_glue.swap import MethodSwap

log = logging.getLogger("local.moto")


STREAM_BACKOFF_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0)
DEFAULT_STREAM_RETRIES = 10  # AWS's default is -1 (until the record expires); bounded locally
_stream_lock = threading.Lock()
_deliveries: dict[str, StreamDelivery] = {}
_stream_endpoint: str | None = None
# Called with (table name, the Lambda-shaped record) at the instant a change is committed; for
# measurements (bench/fanout.py) that start the clock at the commit, not at the client's request.
commit_observers: list[Callable[[str, dict[str, Any]], None]] = []


def _lambda_record(record: Any, region: str, source_arn: str) -> dict[str, Any]:
    """A stream record in the shape Lambda's event carries (as moto's `send_dynamodb_items` builds it)."""
    from datetime import datetime

    from moto.core.utils import unix_time

    body = record.to_json()
    dynamodb = dict(body["dynamodb"])
    if isinstance(dynamodb.get("ApproximateCreationDateTime"), datetime):
        dynamodb["ApproximateCreationDateTime"] = unix_time(dynamodb["ApproximateCreationDateTime"])
    return {
        "eventID": body["eventID"],
        "eventName": body["eventName"],
        "eventVersion": body["eventVersion"],
        "eventSource": body["eventSource"],
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": source_arn,
    }


class StreamDelivery:
    """One event source mapping's poller: batches in shard order, retried, bisected, then dead-lettered."""

    def __init__(self, mapping: Any) -> None:
        self.mapping = mapping
        self._records: list[dict[str, Any]] = []
        self._wake = threading.Condition()
        self._stopped = False
        self._busy = False
        self.delivered = 0
        self.failed_batches: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, name=f"stream-{mapping.uuid[:8]}", daemon=True)
        self._thread.start()

    def enqueue(self, record: dict[str, Any]) -> None:
        with self._wake:
            self._records.append(record)
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def idle(self) -> bool:
        with self._wake:
            return not self._records and not self._busy

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._records and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                size = int(self.mapping.batch_size or 100)
                batch, self._records = self._records[:size], self._records[size:]
                self._busy = True
            try:
                self._deliver(batch)
            except Exception:  # never let one batch kill the poller
                log.exception("stream delivery to %s failed", self.mapping.function_arn)
            finally:
                with self._wake:
                    self._busy = False

    def _invoke(self, batch: list[dict[str, Any]]) -> InvocationResult:
        from moto.awslambda.utils import get_backend

        fn = get_backend(self.mapping.account_id, self.mapping.region).get_function(self.mapping.function_arn)
        return invoke_function(fn, json.dumps({"Records": batch}))

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        retries = self.mapping.max_retry_attempts
        limit = DEFAULT_STREAM_RETRIES if retries is None or int(retries) < 0 else int(retries)
        pending, attempt = batch, 0
        while pending:
            result = self._invoke(pending)
            if result.function_error:
                log.warning(
                    "stream batch of %d failed in %s: %s", len(pending), self.mapping.function_arn, result.payload[:300]
                )
                if self.mapping.bisect_on_error and len(pending) > 1:
                    half = len(pending) // 2
                    self._deliver(pending[:half])
                    self._deliver(pending[half:])
                    return
            else:
                failed_at = self._first_failure(pending, result)
                if failed_at is None:
                    self.delivered += len(pending)
                    return
                self.delivered += failed_at
                pending = pending[failed_at:]
            attempt += 1
            if attempt > limit:
                self._on_failure(pending, attempt, result)
                return
            time.sleep(STREAM_BACKOFF_SECONDS[min(attempt - 1, len(STREAM_BACKOFF_SECONDS) - 1)])

    def _first_failure(self, batch: list[dict[str, Any]], result: InvocationResult) -> int | None:
        """Index of the record to resume from, per the function's `batchItemFailures`; None = all done."""
        if "ReportBatchItemFailures" not in (self.mapping.function_response_types or []):
            return None
        try:
            answer = json.loads(result.payload or b"null")
        except ValueError:
            return 0
        failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
        if not failures:
            return None
        sequence = {r["dynamodb"]["SequenceNumber"]: index for index, r in enumerate(batch)}
        indexes = [sequence.get(str((f or {}).get("itemIdentifier"))) for f in failures]
        return 0 if None in indexes else min(indexes)  # type: ignore[type-var]  # unknown id: whole batch

    def _on_failure(self, batch: list[dict[str, Any]], attempts: int, result: InvocationResult) -> None:
        """What AWS sends the on-failure destination: the batch's coordinates, not the records."""
        first, last = batch[0], batch[-1]
        info = {
            "requestContext": {
                "requestId": result.request_id,
                "functionArn": self.mapping.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": result.function_error or "",
            },
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "DDBStreamBatchInfo": {
                "shardId": "shardId-00000001541626099285-f35f62ef",
                "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": first["dynamodb"].get("ApproximateCreationDateTime"),
                "approximateArrivalOfLastRecord": last["dynamodb"].get("ApproximateCreationDateTime"),
                "batchSize": len(batch),
                "streamArn": self.mapping.event_source_arn,
            },
        }
        self.failed_batches.append(info)
        destination = ((self.mapping.destination_config or {}).get("OnFailure") or {}).get("Destination")
        log.warning("stream batch dead-lettered after %d attempts (destination %s)", attempts, destination)
        if destination and destination.startswith("arn:aws:sqs:") and _stream_endpoint:
            import boto3

            from local import iam_enforcement

            region, account, name = destination.split(":")[3:6]
            # Lambda sends to the destination as the function's execution role, as in AWS
            iam = iam_enforcement.active()
            creds = iam.function_role_credentials(self.mapping.function_arn) if iam else None
            keys = {"aws_access_key_id": creds.access_key, "aws_secret_access_key": creds.secret_key} if creds else {}
            token = {"aws_session_token": creds.token} if creds else {}
            sqs = boto3.client("sqs", endpoint_url=_stream_endpoint, region_name=region, **keys, **token)
            # the queue's URL from its ARN, as Lambda sends (a GetQueueUrl would need its own permission)
            sqs.send_message(QueueUrl=f"{_stream_endpoint}/{account}/{name}", MessageBody=json.dumps(info))


def _stream_add(shard: Any, old: Any, new: Any) -> None:
    """Replacement for `StreamShard.add(old, new)`: record the change, queue it for each mapping."""
    from moto.dynamodb.models.table import StreamRecord

    view_type = shard.table.stream_specification["StreamViewType"]
    event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    with _stream_lock:
        sequence = len(shard.items) + shard.starting_sequence_number
        record = StreamRecord(shard.table, view_type, event_name, old, new, sequence)
        shard.items.append(record)
        if commit_observers:
            committed = _lambda_record(record, shard.table.region_name, "")
            for observer in list(commit_observers):
                observer(shard.table.name, committed)
        for mapping in list(shard.table.lambda_event_source_mappings.values()):
            if not mapping.enabled:
                continue
            delivery = _deliveries.get(mapping.uuid)
            if delivery is None:
                delivery = _deliveries[mapping.uuid] = StreamDelivery(mapping)
            delivery.enqueue(_lambda_record(record, shard.table.region_name, mapping.event_source_arn))


def _stream_shard() -> type:
    from moto.dynamodb.models.table import StreamShard

    return StreamShard


_swap = MethodSwap(_stream_shard, "add", _stream_add)


def install_stream_delivery(endpoint_url: str) -> None:
    """Deliver DynamoDB stream records to mapped functions asynchronously (see above)."""
    global _stream_endpoint
    _stream_endpoint = endpoint_url
    _swap.install()


def uninstall_stream_delivery() -> None:
    """Stop the pollers and put moto's own `StreamShard.add` back."""
    global _stream_endpoint
    _swap.uninstall()
    _stream_endpoint = None
    with _stream_lock:
        deliveries = list(_deliveries.values())
        _deliveries.clear()
    for delivery in deliveries:
        delivery.stop()


def stream_deliveries() -> dict[str, StreamDelivery]:
    """The running pollers by mapping UUID (for tests and diagnostics)."""
    with _stream_lock:
        return dict(_deliveries)
