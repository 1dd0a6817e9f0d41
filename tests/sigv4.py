"""Operators sign REST requests with SigV4 (service `execute-api`): a `requests` auth for tests.

The task API's operator methods (flow registration and retirement) are AWS_IAM, so tests that
register flows sign with the local stack's `awsCredentials` (the embedded AWS's admin) as an
operator would with theirs. `operator_request` says which requests those are, from the catalogue.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.operations import operations


class SigV4(requests.auth.AuthBase):
    """Signs a prepared request with botocore's signer, as the AWS SDKs and `curl --aws-sigv4` do."""

    def __init__(self, credentials: dict[str, Any], service: str = "execute-api") -> None:
        self.credentials = Credentials(
            credentials["accessKeyId"], credentials["secretAccessKey"], credentials.get("sessionToken")
        )
        self.region = credentials.get("region", "us-east-1")
        self.service = service

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=body.encode() if isinstance(body, str) else body,
            headers={k: v for k, v in request.headers.items() if k.lower() in ("content-type", "x-amz-date")},
        )
        SigV4Auth(self.credentials, self.service, self.region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "/?$")


_OPERATOR_ROUTES = [
    (op["rest"]["method"].upper(), _template(op["rest"]["path"]))
    for op in operations().values()
    if "rest" in op and op["callers"]["rest"] == ["operator"]
]


def operator_request(method: str, path: str) -> bool:
    """Whether `METHOD /path` (no query) is an operator-only REST operation (AWS_IAM)."""
    path = path.split("?", 1)[0]
    return any(method.upper() == m and pattern.match(path) for m, pattern in _OPERATOR_ROUTES)
