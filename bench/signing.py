"""Benches register flows as operators: a `requests` auth signing with SigV4 (service `execute-api`).

Flow registration is an AWS_IAM method of the task API; on the local stack, the operator's keys
are the stack's `awsCredentials` output (the embedded AWS's admin).
"""

from __future__ import annotations

from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class OperatorAuth(requests.auth.AuthBase):
    """Signs a prepared request as `curl --aws-sigv4` or an AWS SDK would."""

    def __init__(self, credentials: dict[str, Any]) -> None:
        self.credentials = Credentials(
            credentials["accessKeyId"], credentials["secretAccessKey"], credentials.get("sessionToken")
        )
        self.region = credentials.get("region", "us-east-1")

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=body.encode() if isinstance(body, str) else body,
            headers={k: v for k, v in request.headers.items() if k.lower() == "content-type"},
        )
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request
