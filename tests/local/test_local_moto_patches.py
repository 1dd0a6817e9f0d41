"""What local.moto_glue patches in moto 5.2.5 for load, each shown by a test that fails on moto's own code.

DynamoDB: its backend has no lock (a Query while another thread writes answers 500 "dictionary
changed size during iteration") and its transactions restore a deep copy of the whole table when
a condition fails (undoing writes others committed meanwhile). The server: werkzeug closes every
connection. Step Functions: the definition is parsed again at every execution start.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from local import embedded

TABLE = "concurrency-table"
KEYS = 6
WRITERS_PER_KEY = 3
ATTEMPTS = 40


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    shared = embedded.acquire()
    client = boto3.client(
        "dynamodb",
        endpoint_url=shared.moto.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=50),  # a 500 must show, not be retried
    )
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "kind", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byKind",
                "KeySchema": [
                    {"AttributeName": "kind", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield client
    finally:
        client.delete_table(TableName=TABLE)
        embedded.release(shared)


def _advance(client: Any, key: str) -> bool:
    """Read the counter, then write counter+1 and its log record in one conditional transaction."""
    current = client.get_item(TableName=TABLE, Key={"pk": {"S": key}, "sk": {"N": "0"}}, ConsistentRead=True)
    seq = int(current["Item"]["seq"]["N"]) if "Item" in current else 0
    counter = {"pk": {"S": key}, "sk": {"N": "0"}, "seq": {"N": str(seq + 1)}, "kind": {"S": "counter"}}
    condition = (
        {"ConditionExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "seq"}}
        | {"ExpressionAttributeValues": {":s": {"N": str(seq)}}}
        if seq
        else {"ConditionExpression": "attribute_not_exists(pk)"}
    )
    record = {"pk": {"S": key}, "sk": {"N": str(seq + 1)}, "kind": {"S": "record"}, "pad": {"S": "x" * 2000}}
    try:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": counter, **condition}},
                {"Put": {"TableName": TABLE, "Item": record, "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "TransactionCanceledException":
            return False
        raise
    return True


def test_concurrent_conditional_transactions_lose_nothing_and_never_fail(dynamodb):
    """Writers race on a few counters (most lose their condition) while readers query the index."""
    stop = threading.Event()
    read_errors: list[str] = []

    def read() -> int:
        reads = 0
        while not stop.is_set():
            try:
                dynamodb.query(
                    TableName=TABLE,
                    IndexName="byKind",
                    KeyConditionExpression="kind = :k",
                    ExpressionAttributeValues={":k": {"S": "record"}},
                    Limit=50,
                )
                dynamodb.scan(TableName=TABLE, Limit=50)
            except ClientError as exc:  # the unpatched backend answers 500 here
                read_errors.append(str(exc))
            reads += 1
        return reads

    def write(key: str) -> int:
        return sum(_advance(dynamodb, key) for _ in range(ATTEMPTS))

    keys = [f"k{n}" for n in range(KEYS)]
    with ThreadPoolExecutor(max_workers=2 + KEYS * WRITERS_PER_KEY) as pool:
        readers = [pool.submit(read) for _ in range(2)]
        writers = {key: [pool.submit(write, key) for _ in range(WRITERS_PER_KEY)] for key in keys}
        won = {key: sum(future.result() for future in futures) for key, futures in writers.items()}
        stop.set()
        assert all(reader.result() > 0 for reader in readers)

    assert read_errors == []
    for key in keys:
        items = dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": key}},
            ConsistentRead=True,
        )["Items"]
        counter = next(item for item in items if item["sk"]["N"] == "0")
        records = sorted(int(item["sk"]["N"]) for item in items if item["sk"]["N"] != "0")
        # every commit that was acknowledged is still there, and nothing else is
        assert int(counter["seq"]["N"]) == won[key]
        assert records == list(range(1, won[key] + 1))
    assert sum(won.values()) >= KEYS  # each key moved at least once


def test_a_failed_transaction_does_not_undo_a_write_committed_meanwhile():
    """Deterministic: another write lands while a transaction is checking its conditions."""
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import dynamodb_backends

    shared = embedded.acquire()
    try:
        client = boto3.client("dynamodb", endpoint_url=shared.moto.url, region_name="us-east-1")
        client.create_table(
            TableName="interleave",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        backend = dynamodb_backends["123456789012"]["us-east-1"]
        backend.put_item("interleave", {"pk": {"S": "guard"}})
        original_get_item = backend.get_item

        def get_item_with_a_concurrent_write(table_name: str, key: dict[str, Any]) -> Any:
            if key == {"pk": {"S": "guard"}}:  # the transaction is between its snapshot and its verdict
                backend.put_item("interleave", {"pk": {"S": "concurrent"}})
            return original_get_item(table_name, key)

        backend.get_item = get_item_with_a_concurrent_write
        try:
            with pytest.raises(TransactionCanceledException):
                backend.transact_write_items(
                    [
                        {"Put": {"TableName": "interleave", "Item": {"pk": {"S": "mine"}}}},
                        {
                            "ConditionCheck": {
                                "TableName": "interleave",
                                "Key": {"pk": {"S": "guard"}},
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
        finally:
            del backend.get_item
        keys = {item["pk"]["S"] for item in client.scan(TableName="interleave")["Items"]}
        assert keys == {"guard", "concurrent"}  # the transaction wrote nothing; the other write stays
        client.delete_table(TableName="interleave")
    finally:
        embedded.release(shared)


def test_connections_stay_open_between_requests_even_when_a_body_is_left_unread():
    """Werkzeug closes every connection (a TCP connection and a server thread per AWS call)."""
    shared = embedded.acquire()
    try:
        connection = http.client.HTTPConnection(shared.moto.host, shared.moto.port, timeout=10)
        first_socket = None
        # signed with the local credentials: the embedded AWS authorizes every call
        request = AWSRequest(
            method="POST",
            url=f"{shared.moto.url}/",
            data="{}",
            headers={"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"},
        )
        SigV4Auth(Credentials("testing", "testing"), "dynamodb", "us-east-1").add_auth(request)
        list_tables = dict(request.headers.items())
        for path, body, headers in (
            ("/", "{}", list_tables),
            ("/moto-api/data.json", "x" * 100_000, {}),  # a route that never reads its body
            ("/", "{}", list_tables),
        ):
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if headers:
                assert response.status == 200 and "TableNames" in json.loads(answer), answer[:300]
            assert response.getheader("Connection", "").lower() != "close"
            assert not response.will_close
            first_socket = first_socket or connection.sock
        assert connection.sock is first_socket  # one connection served every request
        connection.close()
    finally:
        embedded.release(shared)


def test_each_state_machine_definition_is_parsed_once():
    """moto's engine parsed the ASL (pure-Python ANTLR) at every execution start."""
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser

    shared = embedded.acquire()
    parses = 0
    original = ASLParser.state_machine

    def counting(self: Any) -> Any:
        nonlocal parses
        parses += 1
        return original(self)

    ASLParser.state_machine = counting
    try:
        sfn = boto3.client("stepfunctions", endpoint_url=shared.moto.url, region_name="us-east-1")
        definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "End": True}}}
        machine = sfn.create_state_machine(
            name=f"parse-once-{uuid.uuid4().hex[:6]}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/r",
        )["stateMachineArn"]
        before = parses
        executions = [
            sfn.start_execution(stateMachineArn=machine, name=f"e{n}", input=json.dumps({"n": n}))["executionArn"]
            for n in range(5)
        ]
        outputs = []
        for arn in executions:
            for _ in range(200):
                described = sfn.describe_execution(executionArn=arn)
                if described["status"] != "RUNNING":
                    break
                time.sleep(0.05)
            outputs.append(json.loads(described["output"]))
        assert outputs == [{"n": n} for n in range(5)]  # each execution still has its own data
        assert parses - before <= 1
    finally:
        ASLParser.state_machine = original
        embedded.release(shared)
