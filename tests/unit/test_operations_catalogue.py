"""The operation catalogue (schema/operations.json) is the one owner of the API surface: the
GraphQL schema, the OpenAPI document, both handlers' routing and every client agree with it, so a
new operation without a route, a field, a resolver or a client fails here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from graphql import parse
from graphql.language import FieldDefinitionNode, ObjectTypeDefinitionNode

from aiwf import operations as runtime
from aiwf.errors import BadRequest
from aiwf.handlers import graphql as graphql_handlers
from aiwf.handlers import task_api
from infra import operations as catalogue
from infra.openapi import SPEC_PATH, build_spec, render_yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schema" / "schema.graphql"
# The backend's own mutation (the publisher's, IAM only): not an operation clients call.
BACKEND_FIELDS = {("Mutation", "updateWorkflowState")}


def _sdl_fields() -> dict[tuple[str, str], FieldDefinitionNode]:
    document = parse(SCHEMA.read_text())
    return {
        (node.name.value, field.name.value): field
        for node in document.definitions
        if isinstance(node, ObjectTypeDefinitionNode) and node.name.value in ("Query", "Mutation")
        for field in node.fields or ()
    }


def test_every_graphql_field_is_a_catalogue_operation_and_back() -> None:
    ops = catalogue.operations()
    declared = {(op["graphql"]["type"], op["graphql"]["field"]) for op in ops.values() if "graphql" in op}
    assert declared == set(_sdl_fields()) - BACKEND_FIELDS


def test_each_graphql_field_allows_exactly_its_catalogue_callers() -> None:
    fields = _sdl_fields()
    for op_id, op in catalogue.operations().items():
        if "graphql" not in op:
            continue
        field = fields[(op["graphql"]["type"], op["graphql"]["field"])]
        directives = {d.name.value for d in field.directives or ()}
        assert directives == catalogue.graphql_directives(op), op_id


def test_graphql_arguments_are_the_rest_path_parameters_and_body_fields() -> None:
    """A field's arguments take what its REST twin takes in the path and the body (or query)."""
    fields = _sdl_fields()
    for op_id, op in catalogue.operations().items():
        if "graphql" not in op or "rest" not in op or op_id == "putFlow":  # putFlow: the document is the body
            continue
        field = fields[(op["graphql"]["type"], op["graphql"]["field"])]
        operation = runtime.OPERATIONS[op_id]
        accepted = set(operation.path_parameters)
        if operation.body_schema is not None:
            accepted |= set(runtime._resolve(operation.body_schema).get("properties", {}))
        accepted |= {runtime._resolve(p)["name"] for p in op["rest"].get("parameters", ())}
        accepted |= set(operation.graphql_arguments)  # the GraphQL field's own (startTask's tenantId)
        assert {argument.name.value for argument in field.arguments or ()} <= accepted | {"afterSeq"}, (
            op_id
        )  # afterSeq: GraphQL's history pages by seq


def test_every_rest_operation_requires_its_callers_own_security() -> None:
    spec = build_spec()
    assert "security" not in spec, "API Gateway ignores the root security: each method carries its own"
    methods = [item[m] for item in spec["paths"].values() for m in ("get", "put", "post", "delete") if m in item]
    assert {m["operationId"] for m in methods} == {k for k, op in catalogue.operations().items() if "rest" in op}
    schemes = spec["components"]["securitySchemes"]
    for method in methods:
        op = catalogue.operations()[method["operationId"]]
        assert method["security"] == catalogue.rest_security(op), method["operationId"]
        assert all(name in schemes for requirement in method["security"] for name in requirement)
        if set(op["callers"]["rest"]) == {"operator"}:
            assert method["security"] == [{"sigv4": []}], method["operationId"]
        elif set(op["callers"]["rest"]) <= {"user", "key"}:
            assert method["security"] == [{"clients": []}], method["operationId"]
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    authorizer = schemes["clients"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request" and authorizer["authorizerResultTtlInSeconds"] == 0
    assert "identitySource" not in authorizer  # no identity source: every request reaches the authorizer


@pytest.mark.parametrize(
    ("kinds", "security"),
    [
        (["operator"], [{"sigv4": []}]),
        (["user"], [{"clients": []}]),
        (["key", "user"], [{"clients": []}]),
        (["token"], []),
    ],
)
def test_rest_callers_map_to_one_authorization_type(kinds: list[str], security: list) -> None:
    assert catalogue.rest_security({"callers": {"rest": kinds}}) == security


@pytest.mark.parametrize("kinds", [["operator", "key"], ["user", "token"], ["operator", "token"], [], ["anyone"]])
def test_rest_callers_that_need_two_authorization_types_are_refused(kinds: list[str]) -> None:
    """A REST method has one authorization type: `operator or key` cannot be expressed."""
    with pytest.raises(ValueError):
        catalogue.rest_security({"callers": {"rest": kinds}})


def test_flow_registration_is_for_operators_only() -> None:
    for op_id in ("putFlow", "retireFlow"):
        assert catalogue.operations()[op_id]["callers"] == {"rest": ["operator"], "graphql": ["operator"]}


def test_the_committed_openapi_document_is_the_catalogues() -> None:
    """schema/tasks-api.yaml is written by `python -m infra.openapi`; edit the catalogue, then run it."""
    assert SPEC_PATH.read_text() == render_yaml(build_spec())
    assert yaml.safe_load(SPEC_PATH.read_text()) == build_spec()


def test_the_flow_id_pattern_has_one_owner() -> None:
    flow_schema_pattern = runtime._FLOW_SCHEMA["$defs"]["flowId"]["pattern"]
    assert flow_schema_pattern == runtime.FLOW_ID_PATTERN
    spec = build_spec()
    assert (
        spec["components"]["schemas"]["FlowId"]["pattern"] == flow_schema_pattern
    )  # inlined: the document stands alone
    assert "a-z0-9-" not in (ROOT / "schema" / "operations.json").read_text()


def test_both_handlers_route_every_catalogue_operation_they_serve() -> None:
    rest = {op.id for op in runtime.rest_operations()}
    assert set(task_api.ROUTES) == rest
    registered = {(r.method, r.path) for r in task_api.app._static_routes + task_api.app._dynamic_routes}
    declared = {
        (op.rest["method"].upper(), re.sub(r"\{(\w+)\}", r"<\1>", op.rest["path"])) for op in runtime.rest_operations()
    }
    assert registered == declared
    for function, fields in (
        ("graphql-resolver", graphql_handlers.FIELDS),
        ("graphql-control", graphql_handlers.CONTROL_FIELDS),
    ):
        assert set(fields) == set(catalogue.graphql_fields(function)), function


def test_page_sizes_are_the_limit_parameters_default_and_maximum() -> None:
    limit = catalogue.catalogue()["parameters"]["Limit"]["schema"]
    for operation in ("listTasks", "listFlows"):
        assert runtime.query_value(operation, "limit", None) == limit["default"]
        assert runtime.query_value(operation, "limit", str(limit["maximum"])) == limit["maximum"]
        with pytest.raises(BadRequest):
            runtime.query_value(operation, "limit", str(limit["maximum"] + 1))


# -- clients -------------------------------------------------------------------------------------
def _sdk_method(path: str) -> Any:
    from aiwf_sdk import client as sdk

    group, _, name = path.partition(".")
    owner = {"flows": sdk.FlowsApi, "tasks": sdk.TasksApi}[group]
    return getattr(owner, name, None)


def _cli_command(path: str) -> Any:
    """`aiwf <path>`'s command (a group's subcommands are its `commands`), or None."""
    from cli.app import app

    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = getattr(command, "commands", {}).get(name)
    return command


def _console_methods() -> set[str]:
    source = (ROOT / "console" / "js" / "api.js").read_text()
    return set(re.findall(r"^  async (\w+)\(", source, flags=re.MULTILINE))


def test_every_operation_names_the_clients_meant_for_it_and_they_exist() -> None:
    """SDK and CLI cover every REST operation, the console every GraphQL field an API-key caller may use."""
    console = _console_methods()
    for op_id, op in catalogue.operations().items():
        clients = op.get("clients", {})
        if "rest" in op:
            assert "sdk" in clients and "cli" in clients, f"{op_id}: no SDK method or CLI command named"
        if "graphql" in op and "key" in op["callers"]["graphql"]:
            assert "console" in clients, f"{op_id}: no console API method named"
        if "sdk" in clients:
            method = _sdk_method(clients["sdk"])
            assert inspect.isfunction(method), f"{op_id}: the SDK has no {clients['sdk']}"
        if "cli" in clients:
            assert _cli_command(clients["cli"]) is not None, f"{op_id}: the CLI has no `aiwf {clients['cli']}`"
        if "console" in clients:
            assert clients["console"] in console, f"{op_id}: console/js/api.js has no {clients['console']}()"
