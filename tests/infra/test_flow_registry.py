"""The flows in flows/ are registered at deploy time by invoking the registrar with all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.flow_registry import load_flows
from tests.infra.stackmodel import Stack, as_list

INVOCATION = "aws:lambda/invocation:Invocation"
FLOWS = Path(__file__).resolve().parents[2] / "flows"


def test_every_shipped_flow_is_in_the_registration(stack: Stack) -> None:
    invocation = stack.one(INVOCATION)
    registrar = stack.function("aiwf.handlers.flow_registrar.handler")
    assert invocation.inputs["functionName"] == registrar.outputs["name"]
    shipped = [yaml.safe_load(path.read_text()) for path in sorted(FLOWS.glob("*.yaml"))]
    assert json.loads(invocation.inputs["input"])["flows"] == shipped
    assert invocation.inputs["triggers"]["flows"]  # a changed document runs the registration again


def test_the_registrar_touches_only_the_flows_table(stack: Stack) -> None:
    registrar = stack.function("aiwf.handlers.flow_registrar.handler")
    role = stack.role_by_arn(registrar.inputs["role"])
    # beyond its own logs (and X-Ray where the stage traces)
    data = [s for s in stack.statements_of_role(role) if s.get("Sid") not in ("OwnLogs", "Tracing")]
    assert [as_list(s["Resource"]) for s in data] == [
        [f"arn:aws:dynamodb:us-east-1:123456789012:table/aiwf-{stack.stage}-flows"]
    ]


def test_a_flow_that_breaks_the_schema_stops_the_program(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text((FLOWS / "hello.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("id: Bad Id\nstartAt: a\nsteps: {a: {type: teleport}}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: 'Bad Id' does not match"):
        load_flows(tmp_path)
