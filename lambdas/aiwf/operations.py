"""The operation catalogue, loaded from `schema/operations.json` (the one definition of the API surface).

Each operation names its REST method and path, its GraphQL field, its request body schema and its
query parameters there; infra builds the OpenAPI body, the AppSync resolvers and the grants from the
same file. The runtime takes from it: which operation a REST route or a GraphQL field is (the
handlers route by operation id), and the validation of request bodies and query parameters, so a
400 lists every offending field by its JSON pointer, with the limits the published contract states.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .errors import BadRequest
from .package_files import schema_file

DOCUMENT: dict[str, Any] = json.loads(schema_file("operations.json").read_text())
_FLOW_SCHEMA: dict[str, Any] = json.loads(schema_file("flow.schema.json").read_text())
_REGISTRY: Registry = Registry().with_resources(
    (document["$id"], Resource.from_contents(document, default_specification=DRAFT202012))
    for document in (DOCUMENT, _FLOW_SCHEMA)
)
# A flow id, as the flow schema defines it (the one owner of the pattern).
FLOW_ID_PATTERN: str = _FLOW_SCHEMA["$defs"]["flowId"]["pattern"]


@dataclass(frozen=True)
class Operation:
    """One catalogue entry, as the handlers need it."""

    id: str
    spec: dict[str, Any]

    @property
    def rest(self) -> dict[str, Any] | None:
        return self.spec.get("rest")

    @property
    def graphql(self) -> dict[str, Any] | None:
        return self.spec.get("graphql")

    @property
    def path_parameters(self) -> tuple[str, ...]:
        """The REST path's `{names}`: a GraphQL field takes them as arguments beside the body's."""
        return tuple(re.findall(r"\{([^}]+)\}", self.rest["path"])) if self.rest else ()

    @property
    def graphql_arguments(self) -> tuple[str, ...]:
        """Arguments only the GraphQL field takes (its `graphql.arguments`: e.g. startTask's
        `tenantId`, which only an operator may give), not part of the REST body."""
        return tuple((self.graphql or {}).get("arguments", {}))

    @property
    def body_schema(self) -> dict[str, Any] | None:
        body = (self.rest or {}).get("requestBody")
        return body["content"]["application/json"]["schema"] if body else None

    @property
    def body_required(self) -> bool:
        return bool((self.rest or {}).get("requestBody", {}).get("required"))

    def query_ref(self, name: str) -> str:
        """A `#/...` pointer (within the catalogue) to the schema of query parameter `name`."""
        for index, parameter in enumerate((self.rest or {}).get("parameters", ())):
            resolved = _resolve(parameter)
            if resolved["in"] == "query" and resolved["name"] == name:
                own = f"#/operations/{self.id}/rest/parameters/{index}"
                return parameter.get("$ref", own) + "/schema"
        raise KeyError(f"{self.id} has no query parameter {name!r}")


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """`node`, or what its `$ref` points at (within the catalogue or the flow schema)."""
    while "$ref" in node:
        node = _REGISTRY.resolver(base_uri=DOCUMENT["$id"]).lookup(node["$ref"]).contents
    return node


def _entries(section: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in section.items() if not key.startswith("$")}


OPERATIONS: dict[str, Operation] = {
    op_id: Operation(op_id, spec) for op_id, spec in _entries(DOCUMENT["operations"]).items()
}


def rest_operations() -> list[Operation]:
    return [op for op in OPERATIONS.values() if op.rest]


def graphql_operations(function: str) -> list[Operation]:
    """The operations whose GraphQL field `function` (a function's name, e.g. graphql-control) resolves."""
    return [op for op in OPERATIONS.values() if op.graphql and op.graphql["function"] == function]


@cache
def _validator(ref: str) -> Draft202012Validator:
    """A validator of the catalogue schema at `ref` (a `#/...` pointer into the catalogue)."""
    return Draft202012Validator({"$ref": DOCUMENT["$id"] + ref}, registry=_REGISTRY)


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(part) for part in path)


def _details(error: ValidationError) -> list[dict[str, str]]:
    """One `{path, message}` per offending field: a missing or unexpected property is named by its
    own path, not its parent's, so a client sees which field to fix."""
    base = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [{"path": _pointer([*base, name]), "message": "field required"} for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = [name for name in error.instance if name not in known]
        return [{"path": _pointer([*base, name]), "message": "extra field not permitted"} for name in extra]
    return [{"path": _pointer(base), "message": error.message}]


def validation_details(schema_ref: str, value: Any) -> list[dict[str, str]]:
    """Every problem of `value` against the catalogue schema `schema_ref`, sorted by path; empty when valid."""
    details: list[dict[str, str]] = []
    for error in _validator(schema_ref).iter_errors(value):
        for detail in _details(error):
            if detail not in details:
                details.append(detail)
    return sorted(details, key=lambda detail: detail["path"])


def checked_body(operation: str, body: Any) -> dict[str, Any]:
    """`body` if it satisfies the operation's request body schema, else BadRequest INVALID_REQUEST
    with every problem in `details`."""
    op = OPERATIONS[operation]
    schema = op.body_schema
    if schema is None:
        raise ValueError(f"{operation} takes no request body")
    details = validation_details(schema["$ref"], body)
    if details:
        raise BadRequest(f"the {operation} request is invalid", details=details, code="INVALID_REQUEST")
    return body


def body_of_arguments(operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL field's arguments as the REST request body (its path parameters and GraphQL-only
    arguments left out, the arguments a client omitted, null or absent, dropped), checked like
    the REST body."""
    op = OPERATIONS[operation]
    outside = (*op.path_parameters, *op.graphql_arguments)
    body = {name: value for name, value in arguments.items() if name not in outside and value is not None}
    return checked_body(operation, body)


def query_value(operation: str, name: str, raw: str | int | None) -> Any:
    """A query parameter's value (an integer parameter converted), its default when absent, or
    BadRequest INVALID_PARAMETER when it breaks the parameter's schema."""
    ref = OPERATIONS[operation].query_ref(name)
    schema = _resolve({"$ref": ref})
    if raw is None or raw == "":
        return schema.get("default")
    value: Any = raw
    if schema.get("type") == "integer" and isinstance(raw, str):
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be an integer, got {raw!r}", code="INVALID_PARAMETER") from None
    problems = validation_details(ref, value)
    if problems:
        raise BadRequest(f"{name}: {problems[0]['message']}", code="INVALID_PARAMETER")
    return value


def resume_error(request: dict[str, Any]) -> dict[str, Any] | None:
    """A resume request's error as `resume_task` takes it: every field it reads, absent ones None."""
    error = request.get("error")
    if error is None:
        return None
    return {
        "errorName": error["errorName"],
        "errorMessage": error.get("errorMessage"),
        "errorDetails": error.get("errorDetails"),
    }
