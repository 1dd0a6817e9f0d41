"""The flows shipped in `flows/` are registered when the stack deploys.

The documents travel as the input of an `aws.lambda_.Invocation` of a small registrar function,
which stores them through the same flow store as `PUT /flows/{id}` (a changed document becomes a
new version; an unchanged one does not). The invocation runs again whenever a document changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml
from jsonschema import Draft202012Validator

from .config import StageConfig
from .functions import Function, FunctionFactory
from .packaging import REPO_ROOT
from .state_store import StateStore

FLOWS_DIR = REPO_ROOT / "flows"
SCHEMA_PATH = REPO_ROOT / "schema" / "flow.schema.json"


def load_flows(folder: Path = FLOWS_DIR) -> list[dict[str, Any]]:
    """Every `*.yaml`/`*.json` flow, schema-checked here so a bad file stops the program early
    (the registrar checks the graph rules too, before it stores anything)."""
    validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    documents, problems = [], []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.json")]):
        document = yaml.safe_load(path.read_text())
        problems += [f"{path.name}: {error.message}" for error in validator.iter_errors(document)]
        documents.append(document)
    if problems:
        raise ValueError("invalid flows in flows/:\n  " + "\n  ".join(problems))
    return documents


@dataclass(frozen=True)
class FlowRegistryArgs:
    store: StateStore
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    flows: list[dict[str, Any]]


class FlowRegistry(pulumi.ComponentResource):
    registrar: Function

    def __init__(
        self, name: str, args: FlowRegistryArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:flows:FlowRegistry", name, None, opts)
        self.registrar = FunctionFactory(args.code, args.layers, config, self).create(
            f"{name}-registrar",
            "flow-registrar",
            handler="aiwf.handlers.flow_registrar.handler",
            description="Registers the flows shipped with the stack (deploy time)",
            access=[args.store.access("register-flows")],
        )
        payload = json.dumps({"flows": args.flows}, sort_keys=True, separators=(",", ":"))
        self.invocation = aws.lambda_.Invocation(
            f"{name}-register",
            function_name=self.registrar.function.name,
            input=payload,
            triggers={"flows": hashlib.sha256(payload.encode()).hexdigest()},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"flowIds": [flow["id"] for flow in args.flows]})
