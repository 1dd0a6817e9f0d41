"""DynamoDB stream -> Lambda on the local stack, as the cloud delivers it (local.dynamodb_event_source):
asynchronously, in order per key, retried from the failed record, dead-lettered when it keeps
failing, and never failing the write that produced it."""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local import dynamodb_event_source, embedded
from tests.local.conftest import make_zip

HANDLERS = textwrap.dedent(
    """
    import os
    import time

    import boto3

    ddb = boto3.client("dynamodb")


    def _attempts(key):
        answer = ddb.update_item(
            TableName=os.environ["OUT"],
            Key={"id": {"S": "attempts#" + key}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(answer["Attributes"]["n"]["N"])


    def _hold():
        # Wait for the test to open the gate (a file): it looks at the poller while this call runs.
        gate, deadline = os.environ.get("GATE"), time.time() + 8
        while gate and not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.01)


    def record(event, context):
        _hold()
        for r in event["Records"]:
            key = r["dynamodb"]["Keys"]["pk"]["S"]
            sequence = r["dynamodb"]["SequenceNumber"]
            if key.startswith("poison") or (key.startswith("flaky") and _attempts(key) < 3):
                return {"batchItemFailures": [{"itemIdentifier": sequence}]}
            value = r["dynamodb"]["NewImage"]["v"]["N"]
            ddb.put_item(
                TableName=os.environ["OUT"],
                Item={"id": {"S": key + "#" + value}, "at": {"N": str(time.time_ns())}, "seq": {"S": sequence}},
            )
        return {"batchItemFailures": []}


    def crash(event, context):
        _hold()
        raise RuntimeError("always")
    """
)
ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


class Env:
    def __init__(self, url: str) -> None:
        self.url = url
        self.code = make_zip({"stream_app.py": HANDLERS})

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1")

    def table(self, name: str, key: str = "pk", stream: bool = False) -> str | None:
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if stream:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        return self.client("dynamodb").create_table(**request)["TableDescription"].get("LatestStreamArn")

    def mapped(self, handler: str, environment: dict[str, str], **mapping: Any) -> tuple[str, str, str]:
        """A source table with a stream, an output table, a function mapped to the stream: (source, out, uuid)."""
        suffix = uuid.uuid4().hex[:8]
        source, out = f"src-{suffix}", f"out-{suffix}"
        stream_arn = self.table(source, stream=True)
        self.table(out, key="id")
        iam = self.client("iam")
        role = iam.create_role(RoleName=f"role-{suffix}", AssumeRolePolicyDocument=ROLE)["Role"]["Arn"]
        # the embedded AWS authorizes each call against the role: the handlers' writes to `out`, and
        # Lambda's on-failure delivery (as the function's role) to a test's dead-letter queue
        access = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
                    "Resource": f"arn:aws:dynamodb:us-east-1:123456789012:table/{out}",
                },
                {
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": "arn:aws:sqs:us-east-1:123456789012:dlq-*",
                },
            ],
        }
        iam.put_role_policy(RoleName=f"role-{suffix}", PolicyName="access", PolicyDocument=json.dumps(access))
        function = self.client("lambda").create_function(
            FunctionName=f"fn-{suffix}",
            Runtime="python3.12",
            Role=role,
            Handler=f"stream_app.{handler}",
            Code={"ZipFile": self.code},
            Timeout=10,
            Environment={"Variables": {"OUT": out, **environment}},
        )["FunctionArn"]
        created = self.client("lambda").create_event_source_mapping(
            EventSourceArn=stream_arn,
            FunctionName=function,
            StartingPosition="LATEST",
            BatchSize=mapping.pop("BatchSize", 10),
            FunctionResponseTypes=["ReportBatchItemFailures"],
            **mapping,
        )
        return source, out, created["UUID"]

    def put(self, table: str, key: str, value: int) -> None:
        self.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": key}, "v": {"N": str(value)}})

    def outputs(self, table: str, count: int, timeout: float = 20) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            items = self.client("dynamodb").scan(TableName=table)["Items"]
            found = {i["id"]["S"]: i for i in items if not i["id"]["S"].startswith("attempts#")}
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    shared = embedded.acquire()
    try:
        yield Env(shared.url)
    finally:
        embedded.release(shared)


def _arrival_order(found: dict[str, dict[str, Any]], key: str) -> list[int]:
    mine = [
        (int(item["at"]["N"]), int(name.split("#")[1])) for name, item in found.items() if name.startswith(key + "#")
    ]
    return [value for _, value in sorted(mine)]


def _held_at_the_gate(mapping: str) -> bool:
    """The mapping's poller has records in hand and has delivered none: its function is still held."""
    delivery = dynamodb_event_source.stream_deliveries()[mapping]
    return delivery.delivered == 0 and not delivery.failed_batches and not delivery.idle()


def test_writes_return_before_delivery_and_records_arrive_in_order_per_key(env: Env, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    source, out, mapping = env.mapped("record", {"GATE": str(gate)}, BatchSize=3)
    for value in range(1, 6):
        for key in ("a", "b"):
            env.put(source, key, value)
    assert _held_at_the_gate(mapping), "a write waited for the stream's function"
    gate.touch()  # the first batch goes on; the writes made meanwhile follow in later batches
    found = env.outputs(out, 10)
    assert _arrival_order(found, "a") == [1, 2, 3, 4, 5]
    assert _arrival_order(found, "b") == [1, 2, 3, 4, 5]
    sequences = sorted(int(item["seq"]["S"]) for item in found.values())
    assert len(set(sequences)) == 10


def test_a_failed_record_is_retried_from_itself_and_keeps_its_keys_order(env: Env) -> None:
    source, out, _ = env.mapped("record", {}, BatchSize=10)
    env.put(source, "flaky", 1)
    env.put(source, "flaky", 2)
    env.put(source, "other", 1)
    found = env.outputs(out, 3)
    assert _arrival_order(found, "flaky") == [1, 2]
    assert "other#1" in found
    attempts = env.client("dynamodb").get_item(TableName=out, Key={"id": {"S": "attempts#flaky"}})["Item"]
    assert int(attempts["n"]["N"]) >= 3


def test_a_record_that_keeps_failing_goes_to_the_on_failure_queue(env: Env) -> None:
    queue_url = env.client("sqs").create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = env.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    source, out, mapping = env.mapped(
        "record",
        {},
        MaximumRetryAttempts=2,
        BisectBatchOnFunctionError=True,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    env.put(source, "poison", 1)
    env.put(source, "after", 1)
    deadline = time.monotonic() + 20
    messages: list[dict[str, Any]] = []
    while not messages and time.monotonic() < deadline:
        messages = env.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    [message] = messages
    info = json.loads(message["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["requestContext"]["approximateInvokeCount"] == 3
    batch = info["DDBStreamBatchInfo"]
    assert batch["batchSize"] >= 1 and batch["streamArn"].startswith("arn:aws:dynamodb:")
    assert "after#1" in env.outputs(out, 1)  # the stream moved on past the dead-lettered record
    assert dynamodb_event_source.stream_deliveries()[mapping].failed_batches


def test_a_function_that_always_fails_never_fails_the_write(env: Env, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    source, _, mapping = env.mapped("crash", {"GATE": str(gate)}, MaximumRetryAttempts=1)
    for value in range(3):
        env.put(source, "k", value)
    assert _held_at_the_gate(mapping), "a write waited for the stream's function"
    gate.touch()
    item = env.client("dynamodb").get_item(TableName=source, Key={"pk": {"S": "k"}})["Item"]
    assert item["v"] == {"N": "2"}
    deadline = time.monotonic() + 10
    while not dynamodb_event_source.stream_deliveries()[mapping].failed_batches:
        assert time.monotonic() < deadline, "the failing batch was neither retried to exhaustion nor dropped"
        time.sleep(0.05)
