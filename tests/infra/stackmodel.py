"""The resource graph one stage declared, as the infra tests read it (loaded by conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "prod")
PROJECT = "ai-workflows"

LAMBDA = "aws:lambda/function:Function"
LAYER = "aws:lambda/layerVersion:LayerVersion"
PERMISSION = "aws:lambda/permission:Permission"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucket:Bucket"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
REST_API = "aws:apigateway/restApi:RestApi"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
API_STAGE = "aws:apigateway/stage:Stage"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"


@dataclass(frozen=True)
class Resource:
    """One resource the program declared: its type, logical name, resolved inputs, outputs, options."""

    type: str
    name: str
    id: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str | None
    retain_on_delete: bool
    depends_on: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.type}::{self.name}"


@dataclass(frozen=True)
class Stack:
    """Everything one stage declared and exported, with the stage's raw YAML config."""

    stage: str
    config: dict[str, Any]
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]

    def of_type(self, type_: str) -> list[Resource]:
        return [resource for resource in self.resources if resource.type == type_]

    def one(self, type_: str, name: str | None = None) -> Resource:
        matches = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(matches) == 1, (
            f"expected one {type_} {name or ''} in {self.stage}, found {[r.name for r in matches]}"
        )
        return matches[0]

    def by_key(self, key: str) -> Resource:
        return next(resource for resource in self.resources if resource.key == key)

    def functions(self) -> list[Resource]:
        return self.of_type(LAMBDA)

    def function(self, handler: str) -> Resource:
        """The Lambda function whose handler is `handler` (handlers are the stable identity)."""
        matches = [f for f in self.functions() if f.inputs["handler"] == handler]
        assert len(matches) == 1, f"expected one function with handler {handler} in {self.stage}"
        return matches[0]

    def role_by_arn(self, arn: str) -> Resource:
        matches = [r for r in self.of_type(ROLE) if r.outputs["arn"] == arn]
        assert len(matches) == 1, f"expected one role with ARN {arn} in {self.stage}"
        return matches[0]

    def policies_of_role(self, role: Resource) -> list[dict[str, Any]]:
        """Every inline policy attached to `role` (RolePolicy.role is the role's name, its id)."""
        return [policy_of(p) for p in self.of_type(ROLE_POLICY) if p.inputs["role"] == role.outputs["name"]]

    def statements_of_role(self, role: Resource) -> list[dict[str, Any]]:
        return [statement for policy in self.policies_of_role(role) for statement in statements(policy)]

    def setting(self, key: str) -> Any:
        """A value of `Pulumi.<stage>.yaml` as YAML typed it (`ai-workflows:` keys by their short name)."""
        return self.config[key if ":" in key else f"{PROJECT}:{key}"]


def policy_of(resource: Resource) -> dict[str, Any]:
    """The parsed policy document of an `aws:iam/rolePolicy:RolePolicy`."""
    return json.loads(resource.inputs["policy"])


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def start_harness(stage: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start planning the program for `stage` in a fresh interpreter (repo root importable)."""
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.infra.harness", stage],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def harness_report(stage: str, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The JSON report of a started harness, or a test failure showing the program's stderr."""
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"planning stage {stage!r} under mocks took more than 120 s")
    if proc.returncode != 0:
        pytest.fail(f"the Pulumi program failed under mocks for stage {stage!r}:\n{err[-6000:]}")
    return json.loads(out)


def load_stack(report: dict[str, Any]) -> Stack:
    stage = report["stage"]
    document = yaml.safe_load((REPO_ROOT / f"Pulumi.{stage}.yaml").read_text())
    resources = [
        Resource(
            type=item["type"],
            name=item["name"],
            id=item.get("id"),
            inputs=item["inputs"],
            outputs=item["outputs"],
            parent=item.get("parent"),
            retain_on_delete=item.get("retainOnDelete", False),
            depends_on=item.get("dependsOn", []),
        )
        for item in report["resources"]
    ]
    outputs = {name: entry["value"] for name, entry in report["outputs"].items()}
    secrets = frozenset(name for name, entry in report["outputs"].items() if entry["secret"])
    return Stack(stage, document["config"], resources, outputs, secrets)
