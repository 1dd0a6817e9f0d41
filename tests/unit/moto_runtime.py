"""A unit-test fixture: the runtime's tables and bucket on moto, in process (import it to use it).

`aws` gives the Lambda code (`aiwf.*`) fresh tables with the keys infra/state_store.py declares
and a payload bucket, through the same settings and boto3 clients the functions use.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from aiwf import aws
from aiwf.settings import get_settings

_TABLES = {
    "unit-tasks": [("taskId", "S")],
    "unit-history": [("taskId", "S"), ("seq", "N")],
    "unit-flows": [("flowId", "S"), ("version", "N")],
}


@pytest.fixture
def aws_tables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Moto DynamoDB and S3 with the tasks, history and flows tables and the payload bucket."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("TASKS_TABLE", "unit-tasks")
    monkeypatch.setenv("HISTORY_TABLE", "unit-history")
    monkeypatch.setenv("FLOWS_TABLE", "unit-flows")
    monkeypatch.setenv("PAYLOAD_BUCKET", "unit-payloads")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    get_settings.cache_clear()
    aws.client.cache_clear()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for name, keys in _TABLES.items():
            ddb.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": key, "KeyType": kind}
                    for (key, _), kind in zip(keys, ("HASH", "RANGE"), strict=False)
                ],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": type_} for key, type_ in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="unit-payloads")
        yield
    get_settings.cache_clear()
    aws.client.cache_clear()
