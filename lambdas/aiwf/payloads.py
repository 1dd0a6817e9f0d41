"""Claim checks for JSON values: inline in DynamoDB when small, in S3 above the threshold.

DynamoDB items stop at 400 KB and Step Functions state at 256 KB, so large step outputs and
task contexts live in the payload bucket and the item keeps only the object key.
"""

from __future__ import annotations

import json
from typing import Any

from .aws import client
from .settings import get_settings

_MISSING: Any = object()


def encode(attribute: str, value: Any, *, key_prefix: str) -> dict[str, dict[str, str]]:
    """DynamoDB attributes holding `value` under `attribute` (JSON) or `attribute + 'Ref'` (S3 key)."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    settings = get_settings()
    if len(text.encode()) <= settings.payload_threshold_bytes:
        return {attribute: {"S": text}}
    key = f"{key_prefix}/{attribute}.json"
    client("s3").put_object(Bucket=settings.payload_bucket, Key=key, Body=text.encode(), ContentType="application/json")
    return {f"{attribute}Ref": {"S": key}}


def decode(item: dict[str, Any], attribute: str, default: Any = None) -> Any:
    """The value written by `encode`, from a deserialized item (plain Python values)."""
    if attribute in item:
        return json.loads(item[attribute])
    ref = item.get(f"{attribute}Ref")
    if ref:
        body = client("s3").get_object(Bucket=get_settings().payload_bucket, Key=ref)["Body"].read()
        return json.loads(body)
    return default
