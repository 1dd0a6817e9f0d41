"""Claim checks for JSON values: inline in DynamoDB when small, in S3 above the threshold.

DynamoDB items stop at 400 KB and Step Functions state at 256 KB, so large step outputs and
task contexts live in the payload bucket and the item keeps only the object key.

Every write puts its object under a key of its own (a random part after the attribute name):
the object is written before the item's conditional write, so two writers racing on one task
must not share a key, or the loser's object would replace the one the winner committed. Items
keep the whole key, so objects written under the older shared keys still load.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from .aws import client
from .settings import get_settings

_MISSING: Any = object()


def encode(attribute: str, value: Any, *, key_prefix: str) -> dict[str, dict[str, str]]:
    """DynamoDB attributes holding `value` under `attribute` (JSON) or `attribute + 'Ref'` (S3 key)."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    settings = get_settings()
    if len(text.encode()) <= settings.payload_threshold_bytes:
        return {attribute: {"S": text}}
    key = f"{key_prefix}/{attribute}-{uuid.uuid4().hex}.json"
    body = text.encode()
    client("s3").put_object(Bucket=settings.payload_bucket, Key=key, Body=body, ContentType="application/json")
    # The size rides along, so answers can choose value or link without reading the object.
    return {f"{attribute}Ref": {"S": key}, f"{attribute}Bytes": {"N": str(len(body))}}


def decode(item: dict[str, Any], attribute: str, default: Any = None) -> Any:
    """The value written by `encode`, from a deserialized item (plain Python values)."""
    if attribute in item:
        return json.loads(item[attribute])
    ref = item.get(f"{attribute}Ref")
    if ref:
        body = client("s3").get_object(Bucket=get_settings().payload_bucket, Key=ref)["Body"].read()
        return json.loads(body)
    return default


@dataclass(frozen=True)
class StoredRef:
    """Where a claim-checked value lives, and its size as JSON."""

    key: str
    size: int


def stored_ref(item: dict[str, Any], attribute: str) -> StoredRef | None:
    """The S3 claim check of `attribute` in a deserialized item, or None when the value is inline."""
    key = item.get(f"{attribute}Ref")
    if not key or attribute in item:
        return None
    size = item.get(f"{attribute}Bytes")
    if size is None:  # written before sizes were recorded
        size = client("s3").head_object(Bucket=get_settings().payload_bucket, Key=key)["ContentLength"]
    return StoredRef(key=key, size=int(size))


def presigned_url(key: str, expires_in: int) -> str:
    """A time-limited GET link to a stored value (signed locally; no call to S3)."""
    return _presigner().generate_presigned_url(
        "get_object", Params={"Bucket": get_settings().payload_bucket, "Key": key}, ExpiresIn=expires_in
    )


@cache
def _presigner() -> Any:
    """An S3 client that signs links with SigV4 (the default query signature is the legacy one)."""
    return boto3.client("s3", config=Config(signature_version="s3v4"))
