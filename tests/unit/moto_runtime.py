"""A unit-test fixture: the runtime's tables and bucket on moto, in process (import it to use it).

`aws_tables` gives the Lambda code (`aiwf.*`) fresh tables with the keys and indexes that
`schema/state_store.json` declares (the file infra/state_store.py declares them from) and a payload
bucket, through the same settings and boto3 clients the functions use.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from aiwf import aws
from aiwf.settings import get_settings, store_schema

BUCKET = "unit-payloads"


def _create_table(ddb: object, name: str, table: dict) -> None:
    indexes = [
        {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": keys["partitionKey"], "KeyType": "HASH"},
                {"AttributeName": keys["sortKey"], "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for index, keys in table.get("indexes", {}).items()
    ]
    ddb.create_table(  # type: ignore[attr-defined]
        TableName=name,
        KeySchema=[
            {"AttributeName": key, "KeyType": kind} for key, kind in zip(table["key"], ("HASH", "RANGE"), strict=False)
        ],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in table["attributes"].items()],
        BillingMode="PAY_PER_REQUEST",
        **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
    )


@pytest.fixture
def aws_tables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Moto DynamoDB and S3 with the tasks, history and flows tables and the payload bucket."""
    schema = store_schema()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, table in schema["tables"].items():
        monkeypatch.setenv(table["environment"], f"unit-{name}")
    monkeypatch.setenv(schema["payloads"]["environment"], BUCKET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    get_settings.cache_clear()
    aws.client.cache_clear()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for name, table in schema["tables"].items():
            _create_table(ddb, f"unit-{name}", table)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield
    get_settings.cache_clear()
    aws.client.cache_clear()
