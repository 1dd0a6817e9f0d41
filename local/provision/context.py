"""What every provisioner needs: boto3 clients for the embedded AWS, the registry, naming like Pulumi.

A provisioner is a function `(ctx, args) -> (id, outputs)` for one resource type: it creates the
resource in moto where moto implements the service (so handler code and the state machine find
it), or records it in `ctx.registry` where the local stack serves the data plane itself, and
answers with outputs that mimic what the AWS provider returns (arn, name, id, invokeArn, ...).
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pulumi
import yaml
from botocore.config import Config

from local.registry import ACCOUNT_ID, Registry

SERVICES = ("dynamodb", "s3", "iam", "logs", "lambda", "stepfunctions", "events", "sqs", "cognito-idp")


@dataclass
class Context:
    """The embedded AWS being provisioned, and where the local servers' records go."""

    endpoint_url: str
    region: str
    base_url: str
    registry: Registry
    lock: threading.Lock = field(default_factory=threading.Lock)  # resources register from many threads
    # Generated names and ids that must not change across restarts of a persisted stack (its data
    # names them: table and bucket names, the state machine in execution ARNs, the API key a
    # client holds), by a key of the resource type and logical name (`local.persistence` keeps them).
    names: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region
        )
        config = Config(retries={"max_attempts": 1})
        self._clients = {name: session.client(name, endpoint_url=self.endpoint_url, config=config) for name in SERVICES}

    def client(self, service: str) -> Any:
        return self._clients[service]

    def stable(self, key: str, make: Callable[[], str]) -> str:
        """The value generated for `key` before (in this run or, persisted, an earlier one), else `make()`'s."""
        with self.lock:
            value = self.names.get(key)
            if value is None:
                value = self.names[key] = make()
            return value

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{ACCOUNT_ID}:{resource}"


Args = pulumi.runtime.MockResourceArgs
Provisioner = Callable[[Context, Args], tuple[str, dict]]


def auto_name(name: str, lower: bool = False) -> str:
    """Pulumi's auto-naming: the logical name plus a hyphen and 7 random characters."""
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(7))
    value = f"{name}-{suffix}"
    return value.lower() if lower else value


def random_id(length: int = 10) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def json_or_yaml(text: str | dict) -> dict:
    if isinstance(text, dict):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return yaml.safe_load(text)


def generic(ctx: Context, args: Args) -> tuple[str, dict]:
    """A type with no local implementation: answered with its inputs, a name and an ARN."""
    name = args.inputs.get("name") or args.name
    service = args.typ.split(":")[1].split("/")[0]
    resource_id = f"{args.name}-{random_id(7)}"
    return resource_id, {**args.inputs, "arn": ctx.arn(service, f"{name}"), "name": name}
