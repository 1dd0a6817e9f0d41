"""SQS -> Lambda event source mappings on the local stack, polled as Lambda's own poller does.

moto 5.2.5 runs a queue's mapped function synchronously inside `send_message`, deletes the
messages when the invocation "succeeds" and ignores `ReportBatchItemFailures`, the queue's
visibility timeout and its redrive policy. In AWS a poller long-polls the queue, invokes the
function with a batch, deletes the messages that succeeded and leaves the others to become
visible again (or to move to the dead-letter queue after `maxReceiveCount` receives). This module
is that poller, one thread per mapping, talking to the embedded AWS through its public APIs
(ReceiveMessage, the Lambda Invoke API, DeleteMessageBatch), so the function runs in its warm
worker exactly as for any other invocation and the queue's own settings decide redelivery.

`local.mocks` calls `start` when the program declares a mapping whose source is a queue;
`local.embedded` calls `stop_all` when the embedded AWS goes away.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from local import iam_enforcement
from local.iam_enforcement import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

log = logging.getLogger("local.sqs")

LONG_POLL_SECONDS = 1  # short, so a stop is quick; moto wakes a waiting receive when a message arrives
MAX_BATCH = 10  # ReceiveMessage's limit; a larger batch size would need a batching window
INVOKE_TIMEOUT_SECONDS = 15 * 60 + 30  # longer than any function may run

_lock = threading.Lock()
_pollers: dict[str, SqsPoller] = {}


@dataclass(frozen=True)
class SqsMapping:
    """What the poller needs of one event source mapping."""

    uuid: str
    queue_arn: str
    function_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = False

    @property
    def region(self) -> str:
        return self.queue_arn.split(":")[3]

    @property
    def account(self) -> str:
        return self.queue_arn.split(":")[4]

    @property
    def queue_name(self) -> str:
        return self.queue_arn.split(":")[5]


def _detach_from_moto(mapping: SqsMapping) -> None:
    """Take the mapping off moto's synchronous `send_message` path (the poller delivers instead)."""
    from moto.sqs.models import sqs_backends

    try:
        queue = sqs_backends[mapping.account][mapping.region].get_queue(mapping.queue_name)
    except Exception:  # no such queue: nothing moto would deliver either
        return
    for key, esm in list(queue.lambda_event_source_mappings.items()):
        if getattr(esm, "uuid", None) == mapping.uuid or key == mapping.function_arn:
            queue.lambda_event_source_mappings.pop(key, None)


def sqs_record(message: dict[str, Any], mapping: SqsMapping) -> dict[str, Any]:
    """One received message as a Lambda SQS event record."""
    attributes = message.get("Attributes") or {}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {
            key: attributes[key]
            for key in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
            if key in attributes
        },
        "messageAttributes": message.get("MessageAttributes") or {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": mapping.queue_arn,
        "awsRegion": mapping.region,
    }


def failed_ids(payload: bytes, message_ids: list[str], report_failures: bool) -> set[str]:
    """The messages to keep, per the function's answer; as in AWS, an answer that names an unknown
    or empty id fails the whole batch, and without `ReportBatchItemFailures` success is all."""
    if not report_failures:
        return set()
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        return set()
    failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if not failures:
        return set()
    named = {str((failure or {}).get("itemIdentifier") or "") for failure in failures}
    return set(message_ids) if not named <= set(message_ids) else named


class SqsPoller:
    """One mapping's poller thread: receive, invoke, delete what succeeded."""

    def __init__(self, mapping: SqsMapping, endpoint_url: str) -> None:
        self.mapping = mapping
        self.invocations = 0
        self._stopped = threading.Event()
        # As Lambda's poller: the queue is read as the function's execution role (which must allow
        # it: local.iam_enforcement), the function invoked by the service itself (the local admin).
        service = boto3.session.Session(
            aws_access_key_id=LOCAL_ACCESS_KEY_ID,
            aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
            region_name=mapping.region,
        )
        iam = iam_enforcement.active()
        creds = iam.function_role_credentials(mapping.function_arn) if iam else None
        role = service
        if creds is not None:
            role = boto3.session.Session(
                aws_access_key_id=creds.access_key,
                aws_secret_access_key=creds.secret_key,
                aws_session_token=creds.token,
                region_name=mapping.region,
            )
        self._queue_url = f"{endpoint_url}/{mapping.account}/{mapping.queue_name}"  # no GetQueueUrl, as Lambda
        self._sqs = role.client(
            "sqs",
            endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 1}, read_timeout=LONG_POLL_SECONDS + 30),
        )
        self._lambda = service.client(
            "lambda",
            endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 0}, read_timeout=INVOKE_TIMEOUT_SECONDS),
        )
        self._thread = threading.Thread(target=self._run, name=f"sqs-{mapping.uuid[:8]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        queue_url = self._queue_url
        while not self._stopped.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=max(1, min(self.mapping.batch_size, MAX_BATCH)),
                    WaitTimeSeconds=LONG_POLL_SECONDS,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if messages and not self._stopped.is_set():
                    self._deliver(queue_url, messages)
            except Exception as exc:  # the embedded AWS going away, or a transient error: poll again
                if self._stopped.is_set():
                    return
                log.debug("sqs poller %s: %s", self.mapping.uuid, exc)
                self._stopped.wait(1)

    def _deliver(self, queue_url: str, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(message, self.mapping) for message in messages]}
        answer = self._lambda.invoke(FunctionName=self.mapping.function_arn, Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        self.invocations += 1
        if answer.get("FunctionError"):  # every message comes back when its visibility timeout ends
            log.warning("sqs batch of %d failed in %s: %s", len(messages), self.mapping.function_arn, payload[:300])
            return
        keep = failed_ids(payload, [m["MessageId"] for m in messages], self.mapping.report_batch_item_failures)
        done = [m for m in messages if m["MessageId"] not in keep]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )


def start(mapping: SqsMapping, endpoint_url: str) -> SqsPoller:
    """Poll `mapping`'s queue for its function from now on (idempotent per mapping UUID)."""
    with _lock:
        poller = _pollers.get(mapping.uuid)
        if poller is None:
            _detach_from_moto(mapping)
            poller = _pollers[mapping.uuid] = SqsPoller(mapping, endpoint_url)
        return poller


def stop_all() -> None:
    """Stop every poller (the embedded AWS is going away); threads end within one long poll."""
    with _lock:
        pollers = list(_pollers.values())
        _pollers.clear()
    for poller in pollers:
        poller.stop()


def pollers() -> dict[str, SqsPoller]:
    """The running pollers by mapping UUID (for tests and diagnostics)."""
    with _lock:
        return dict(_pollers)
