"""A unit-test fixture: the runtime's tables and bucket on moto, in process (import it to use it).

`aws_tables` gives the Lambda code (`aiwf.*`) fresh tables with the keys infra/state_store.py
declares and a payload bucket, through the same settings and boto3 clients the functions use.

They live in the process's embedded moto server (`local.embedded`, the same moto the local
stack uses, with its patches), under names unique to the test, and are deleted after it. Not
`mock_aws`: it resets moto's process-global backends when it starts and stops, which would wipe
the stack that the integration and end-to-end tests share while tests run in random order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from aiwf import aws
from aiwf.settings import get_settings
from local import embedded

_TABLES = {
    "TASKS_TABLE": [("taskId", "S")],
    "HISTORY_TABLE": [("taskId", "S"), ("seq", "N")],
    "FLOWS_TABLE": [("flowId", "S"), ("version", "N")],
}


@pytest.fixture
def aws_tables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Moto DynamoDB and S3 with the tasks, history and flows tables and the payload bucket."""
    shared = embedded.acquire()
    suffix = uuid.uuid4().hex[:10]
    names = {variable: f"unit-{variable.split('_')[0].lower()}-{suffix}" for variable in _TABLES}
    bucket = f"unit-payloads-{suffix}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", shared.url)
    for variable, name in names.items():
        monkeypatch.setenv(variable, name)
    monkeypatch.setenv("PAYLOAD_BUCKET", bucket)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    get_settings.cache_clear()
    aws.client.cache_clear()
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=shared.url)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=shared.url)
    try:
        for variable, keys in _TABLES.items():
            ddb.create_table(
                TableName=names[variable],
                KeySchema=[
                    {"AttributeName": key, "KeyType": kind}
                    for (key, _), kind in zip(keys, ("HASH", "RANGE"), strict=False)
                ],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": type_} for key, type_ in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        s3.create_bucket(Bucket=bucket)
        yield
    finally:
        for name in names.values():
            ddb.delete_table(TableName=name)
        for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=listed["Key"])
        s3.delete_bucket(Bucket=bucket)
        get_settings.cache_clear()
        aws.client.cache_clear()
        embedded.release(shared)
