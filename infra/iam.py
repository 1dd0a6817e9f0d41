"""IAM policy documents as plain data: every statement names its actions and resources."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[pulumi.Input[str], ...]
    sid: str | None = None


@dataclass(frozen=True)
class Access:
    """What a function needs to use a resource, handed over by the resource's owner (in the spirit of
    stelvio's `link`): the variables that name it to the runtime and the statements that allow it,
    so no component restates another's names or actions."""

    environment: dict[str, pulumi.Input[str]]
    statements: tuple[Statement, ...]


def policy_document(statements: list[Statement]) -> pulumi.Output[str]:
    """A JSON policy document once every resource ARN is known."""

    def render(resolved: list[Any]) -> str:
        index = 0
        rendered = []
        for statement in statements:
            resources = resolved[index : index + len(statement.resources)]
            index += len(statement.resources)
            entry: dict[str, Any] = {
                "Effect": "Allow",
                "Action": sorted(set(statement.actions)),
                "Resource": resources if len(resources) > 1 else resources[0],
            }
            if statement.sid:
                entry = {"Sid": statement.sid, **entry}
            rendered.append(entry)
        return json.dumps({"Version": "2012-10-17", "Statement": rendered})

    flat = [resource for statement in statements for resource in statement.resources]
    return pulumi.Output.all(*flat).apply(render)


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )
