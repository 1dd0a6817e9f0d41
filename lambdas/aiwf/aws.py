"""boto3 clients, created once per execution environment (warm invocations reuse them).

`AWS_ENDPOINT_URL` (set by the local stack) is honoured by boto3 itself, so the handler code
talks to the embedded AWS exactly as it talks to the cloud.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)
