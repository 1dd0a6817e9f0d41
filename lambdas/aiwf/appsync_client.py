"""A SigV4-signed GraphQL call to AppSync with the function's own credentials (IAM auth mode).

botocore signs the request exactly as the AWS SDKs do; the HTTP call itself uses urllib, so the
publisher needs no third-party HTTP client in its layer.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

TIMEOUT_SECONDS = 10


class PublishError(Exception):
    """AppSync refused or failed the call; the stream will retry the record."""


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def _region(url: str) -> str:
    """`<id>.appsync-api.<region>.amazonaws.com`, else the function's own region."""
    parts = (urlparse(url).hostname or "").split(".")
    if "appsync-api" in parts and parts.index("appsync-api") + 1 < len(parts):
        return parts[parts.index("appsync-api") + 1]
    return _session().region_name or "us-east-1"


def call(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """POST one operation signed for the `appsync` service; the `data`, or PublishError."""
    body = json.dumps({"query": query, "variables": variables}, separators=(",", ":"))
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    credentials = _session().get_credentials()
    if credentials is None:
        raise PublishError("no credentials to sign the request with")
    SigV4Auth(credentials.get_frozen_credentials(), "appsync", _region(url)).add_auth(request)
    prepared = urllib.request.Request(url, data=body.encode(), headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise PublishError(f"HTTP {exc.code}: {exc.read()[:500]!r}") from exc
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise PublishError(f"{type(exc).__name__}: {exc}") from exc
    if answer.get("errors"):
        raise PublishError(json.dumps(answer["errors"])[:1000])
    return answer.get("data") or {}
