"""A unit-test fixture: the runtime's tables and bucket on moto, in process (import it to use it).

`aws_tables` gives the Lambda code (`aiwf.*`) fresh tables with the keys and indexes that
`schema/state_store.json` declares (the file infra/state_store.py declares them from) and a payload
bucket, through the same settings and boto3 clients the functions use.

moto runs in process without a reset (`tests.moto_in_process`, which says why): the tables and
bucket have names of their own, and the fixture deletes them when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from aiwf import aws
from aiwf.settings import get_settings, store_schema
from tests.moto_in_process import moto_without_reset

_REGION = "us-east-1"


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
    suffix = uuid.uuid4().hex[:12]
    tables = {name: f"unit-{name}-{suffix}" for name in schema["tables"]}
    bucket = f"unit-payloads-{suffix}"
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, table in schema["tables"].items():
        monkeypatch.setenv(table["environment"], tables[name])
    monkeypatch.setenv(schema["payloads"]["environment"], bucket)
    monkeypatch.setenv("AWS_DEFAULT_REGION", _REGION)
    get_settings.cache_clear()
    aws.client.cache_clear()
    try:
        with moto_without_reset():
            ddb = boto3.client("dynamodb", region_name=_REGION)
            s3 = boto3.client("s3", region_name=_REGION)
            for name, table in schema["tables"].items():
                _create_table(ddb, tables[name], table)
            s3.create_bucket(Bucket=bucket)
            yield
            for name in tables.values():
                ddb.delete_table(TableName=name)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    s3.delete_object(Bucket=bucket, Key=item["Key"])
            s3.delete_bucket(Bucket=bucket)
    finally:
        get_settings.cache_clear()
        aws.client.cache_clear()
