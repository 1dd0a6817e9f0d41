"""The replayer of dead-lettered stream batches, on the in-process embedded AWS (moto 5.2.5), and
the local SQS poller that runs it as Lambda's SQS event source mapping does.

The on-failure messages are real: a function that always fails is mapped to a tasks table's
stream with no retries and the queue as its on-failure destination, so the coordinates the local
stream delivery writes are checked against what moto's GetShardIterator/GetRecords answer. The
replayer handler runs in this process against the embedded AWS; only the GraphQL call is
replaced by a recorder (or by a PublishError, for an API that is down).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aiwf import aws, replay, settings
from aiwf.appsync_client import PublishError
from aiwf.handlers import replayer
from aiwf.repository import Task, TaskRepository
from local import dynamodb_event_source, embedded, sqs_event_source
from tests.local.conftest import HANDLER_SOURCE, make_zip

ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
QUEUES = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": "arn:aws:sqs:us-east-1:123456789012:*",
            }
        ],
    }
)
SQS_HANDLER = """
def keep_the_failing(event, context):
    return {"batchItemFailures": [
        {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"].startswith("fail")
    ]}
"""


class Context:
    function_name = "state-replayer"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:state-replayer"
    aws_request_id = "req"


@dataclass
class Env:
    url: str
    tasks: str
    history: str
    stream_arn: str
    queue_url: str
    queue_arn: str

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1")

    def function(self, handler: str, code: bytes) -> str:
        suffix = uuid.uuid4().hex[:8]
        role = self.client("iam").create_role(RoleName=f"replay-{suffix}", AssumeRolePolicyDocument=ROLE)["Role"]
        # Lambda uses the function's role for its on-failure destination and to poll a mapped queue
        self.client("iam").put_role_policy(RoleName=f"replay-{suffix}", PolicyName="queues", PolicyDocument=QUEUES)
        return self.client("lambda").create_function(
            FunctionName=f"replay-{suffix}",
            Runtime="python3.12",
            Role=role["Arn"],
            Handler=handler,
            Code={"ZipFile": code},
            Timeout=10,
        )["FunctionArn"]


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    shared = embedded.acquire()
    try:
        suffix = uuid.uuid4().hex[:8]
        ddb = boto3.client("dynamodb", endpoint_url=shared.url, region_name="us-east-1")
        stream_arn = ddb.create_table(
            TableName=f"tasks-{suffix}",
            KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "taskId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]
        ddb.create_table(
            TableName=f"history-{suffix}",
            KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "taskId", "AttributeType": "S"},
                {"AttributeName": "seq", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs", endpoint_url=shared.url, region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName=f"publish-failures-{suffix}", Attributes={"VisibilityTimeout": "3600"})[
            "QueueUrl"
        ]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        built = Env(shared.url, f"tasks-{suffix}", f"history-{suffix}", stream_arn, queue_url, queue_arn)
        # The publisher stand-in: every batch fails, no retry, straight to the on-failure queue.
        failing = built.function("app.boom", make_zip({"app.py": HANDLER_SOURCE}))
        built.client("lambda").create_event_source_mapping(
            EventSourceArn=stream_arn,
            FunctionName=failing,
            StartingPosition="LATEST",
            BatchSize=25,
            MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": queue_arn}},
        )
        yield built
    finally:
        embedded.release(shared)


@pytest.fixture
def runtime(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The Lambda code's environment pointed at the embedded AWS; yields what it published."""
    for key, value in {
        "AWS_ENDPOINT_URL": env.url,
        "TASKS_TABLE": env.tasks,
        "HISTORY_TABLE": env.history,
        "GRAPHQL_URL": "http://127.0.0.1:9/graphql",
        "REPLAY_QUEUE_URL": env.queue_url,
        "REPLAY_BACKOFF_SECONDS": "0",  # visible again at once: the test receives them back
        "POWERTOOLS_SERVICE_NAME": "state-replayer",
    }.items():
        monkeypatch.setenv(key, value)
    aws.client.cache_clear()
    settings.get_settings.cache_clear()
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(replayer, "publish_state", lambda state, url: published.append(state))
    yield published
    aws.client.cache_clear()
    settings.get_settings.cache_clear()


def _commit_a_task(status_after: str = "SUCCEEDED") -> Task:
    """seq 1 PENDING, a bookkeeping update (no seq), seq 2 RUNNING, seq 3 final."""
    repository = TaskRepository()
    task = Task(
        task_id=f"t-{uuid.uuid4().hex[:8]}",
        flow_id="hello",
        flow_version=1,
        status="PENDING",
        seq=1,
        started_at="2026-12-01T00:00:00.000000Z",
        updated_at=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        context={"input": {"secret": "never published"}},
    )
    assert repository.create(task)
    task = repository.set_execution(task, "arn:aws:states:us-east-1:123456789012:execution:o:x")
    task = repository.save(task, status="RUNNING", current_step="prepare")
    return repository.save(task, status=status_after, output={"greeting": "hi"})


def _dead_lettered(env: Env) -> list[dict[str, Any]]:
    """Every on-failure message once the stream delivery has given up on all it had."""
    sqs = env.client("sqs")
    deadline = time.monotonic() + 30
    messages: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        idle = all(delivery.idle() for delivery in dynamodb_event_source.stream_deliveries().values())
        got = sqs.receive_message(
            QueueUrl=env.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        messages.update((m["MessageId"], m) for m in got)
        if idle and not got and messages:
            break
        time.sleep(0.05)
    return list(messages.values())


def _event(env: Env, messages: list[dict[str, Any]]) -> dict[str, Any]:
    mapping = sqs_event_source.SqsMapping("test", env.queue_arn, Context.invoked_function_arn)
    return {"Records": [sqs_event_source.sqs_record(message, mapping) for message in messages]}


def _of(published: list[dict[str, Any]], task_id: str) -> list[tuple[int, str]]:
    return [(state["seq"], state["status"]) for state in published if state["taskId"] == task_id]


def test_on_failure_coordinates_match_what_the_stream_returns(env: Env, runtime: list[dict[str, Any]]) -> None:
    """moto serves GetShardIterator/GetRecords for the table's stream, and the local stream
    delivery's shard id and sequence numbers are the ones those calls know."""
    _commit_a_task()
    messages = _dead_lettered(env)
    [shard] = env.client("dynamodbstreams").describe_stream(StreamArn=env.stream_arn)["StreamDescription"]["Shards"]
    for message in messages:
        batch = replay.StreamBatch.from_message(message["Body"])
        assert (batch.stream_arn, batch.shard_id) == (env.stream_arn, shard["ShardId"])
        records = replay.stream_records(batch)
        assert records[0]["dynamodb"]["SequenceNumber"] == batch.start
        assert records[-1]["dynamodb"]["SequenceNumber"] == batch.end
        assert len(records) == json.loads(message["Body"])["DDBStreamBatchInfo"]["batchSize"]
    replayer.handler(_event(env, messages), Context())  # drains the queue for the next test


def test_a_dead_lettered_batch_is_published_again_in_order(env: Env, runtime: list[dict[str, Any]]) -> None:
    task = _commit_a_task()
    messages = _dead_lettered(env)
    answer = replayer.handler(_event(env, messages), Context())
    assert answer == {"batchItemFailures": []}
    # Every state change once, in seq order; the bookkeeping update (same seq) is not one.
    assert _of(runtime, task.task_id) == [(1, "PENDING"), (2, "RUNNING"), (3, "SUCCEEDED")]
    assert all("context" not in state for state in runtime)
    assert json.loads(runtime[-1]["output"]) == {"greeting": "hi"}


def test_while_the_api_is_down_every_message_stays_and_is_tried_again(
    env: Env, runtime: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _commit_a_task()
    messages = _dead_lettered(env)
    calls: list[dict[str, Any]] = []

    def down(state: dict[str, Any], url: str) -> None:
        calls.append(state)
        raise PublishError("ConnectionRefusedError: [Errno 111] Connection refused")

    monkeypatch.setattr(replayer, "publish_state", down)
    answer = replayer.handler(_event(env, messages), Context())
    assert {f["itemIdentifier"] for f in answer["batchItemFailures"]} == {m["MessageId"] for m in messages}
    assert len(calls) == 1, "the rest of the batch is not tried once the API failed"
    # The backoff (0 s here) made them visible again: the mapping would hand them over once more.
    again = _dead_lettered(env)
    assert {m["MessageId"] for m in again} == {m["MessageId"] for m in messages}
    assert all(int(m["Attributes"]["ApproximateReceiveCount"]) >= 2 for m in again)
    monkeypatch.setattr(replayer, "publish_state", lambda state, url: runtime.append(state))
    assert replayer.handler(_event(env, again), Context()) == {"batchItemFailures": []}
    assert _of(runtime, task.task_id) == [(1, "PENDING"), (2, "RUNNING"), (3, "SUCCEEDED")]


class TrimmedStream:
    """The stream after 24 hours: the batch's records are gone."""

    def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
        error = {"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}}
        raise ClientError(error, "GetShardIterator")


def test_records_the_stream_no_longer_has_come_from_the_history_table(
    env: Env, runtime: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _commit_a_task(status_after="FAILED")
    parent = task.task_id
    repository = TaskRepository()
    branch = Task(
        task_id=f"{parent}#b0",
        flow_id="hello",
        flow_version=1,
        status="RUNNING",
        seq=1,
        started_at="2026-12-01T00:00:00.000000Z",
        updated_at=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        branch_id="b0",
        branch_of={"taskId": parent, "stepId": "fanout", "index": 0},
    )
    assert repository.create(branch)
    messages = _dead_lettered(env)
    real_client = replay.client
    monkeypatch.setattr(
        replay, "client", lambda name: TrimmedStream() if name == "dynamodbstreams" else real_client(name)
    )
    assert replayer.handler(_event(env, messages), Context()) == {"batchItemFailures": []}
    # Each message replays its whole time window, so overlapping windows repeat states (listeners
    # drop them by seq); what matters is that every state is there, each task's in seq order.
    distinct = list(dict.fromkeys((s["branchId"], s["seq"], s["status"]) for s in runtime if s["taskId"] == parent))
    assert distinct == [(None, 1, "PENDING"), (None, 2, "RUNNING"), (None, 3, "FAILED"), ("b0", 1, "RUNNING")]


def test_an_unreadable_message_is_kept_for_the_dead_letter_queue(runtime: list[dict[str, Any]], env: Env) -> None:
    event = {"Records": [{"messageId": "m1", "receiptHandle": "h", "body": '{"not": "a batch"}', "attributes": {}}]}
    assert replayer.handler(event, Context()) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert runtime == []


def test_the_local_sqs_poller_deletes_what_succeeded_and_redrives_what_keeps_failing(env: Env) -> None:
    sqs = env.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    final_url = sqs.create_queue(QueueName=f"final-{suffix}")["QueueUrl"]
    final_arn = sqs.get_queue_attributes(QueueUrl=final_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": final_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName=f"work-{suffix}", Attributes={"VisibilityTimeout": "0", "RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    function = env.function("sqs_app.keep_the_failing", make_zip({"sqs_app.py": SQS_HANDLER}))
    mapping = env.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName=function, BatchSize=10)
    poller = sqs_event_source.start(
        sqs_event_source.SqsMapping(mapping["UUID"], arn, function, 10, report_batch_item_failures=True), env.url
    )
    sqs.send_message(QueueUrl=url, MessageBody="ok")  # moto no longer invokes inside send_message
    sqs.send_message(QueueUrl=url, MessageBody="fail")
    deadline = time.monotonic() + 30
    moved: list[dict[str, Any]] = []
    while not moved and time.monotonic() < deadline:
        moved = sqs.receive_message(QueueUrl=final_url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in moved] == ["fail"]
    left = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert left == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert poller.invocations >= 2
    poller.stop()


def test_a_batch_answer_naming_an_unknown_message_fails_the_whole_batch() -> None:
    ids = ["a", "b"]
    assert sqs_event_source.failed_ids(b'{"batchItemFailures": []}', ids, True) == set()
    assert sqs_event_source.failed_ids(b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', ids, True) == {"b"}
    assert sqs_event_source.failed_ids(b'{"batchItemFailures": [{"itemIdentifier": "x"}]}', ids, True) == {"a", "b"}
    assert sqs_event_source.failed_ids(b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', ids, False) == set()
