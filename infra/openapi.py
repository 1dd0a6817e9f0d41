"""The task API's OpenAPI document, built from the operation catalogue, and its API Gateway form.

`schema/operations.json` declares each operation once; this turns its REST bindings into the
OpenAPI 3 document (each method with its own `security`, from its callers: API Gateway ignores a
document's root `security`). `schema/tasks-api.yaml` is that document, committed for readers and
clients (`python -m infra.openapi` writes it; a test fails when it is stale). The RestApi body is
the same document with the Lambda integration added to every operation, the Lambda authorizer's
function named in the `clients` scheme, and MOCK 404 catch-alls (`gateway_body`); the local
gateway routes and authorizes from that body.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .operations import SCHEMA_DIR, catalogue, operations, path_parameters, rest_security

SPEC_PATH = SCHEMA_DIR / "tasks-api.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Catalogue sections that become `components` sections of the same name.
COMPONENT_SECTIONS = ("parameters", "responses", "schemas")
HEADER = "# Generated from schema/operations.json by `python -m infra.openapi`: edit the catalogue, not this file.\n"


def _external(ref: str) -> Any:
    """The content a reference into another schema file points at (e.g. the flow schema's flowId)."""
    name, _, pointer = ref.partition("#")
    node: Any = json.loads((SCHEMA_DIR / name).read_text())
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _components_refs(node: Any) -> Any:
    """`node` with catalogue references (`#/schemas/X`) made document references
    (`#/components/schemas/X`) and references into other files inlined, so the document stands alone."""
    if isinstance(node, list):
        return [_components_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: value for key, value in node.items() if key != "$comment"}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        return {**node, "$ref": "#/components/" + ref[2:]}
    if isinstance(ref, str):
        return _components_refs(_external(ref))
    return {key: _components_refs(value) for key, value in node.items()}


def _operation(op_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    binding = {k: v for k, v in entry["rest"].items() if k not in ("method", "path", "states")}
    return {"operationId": op_id, **_components_refs(binding), "security": rest_security(entry)}


def build_spec() -> dict[str, Any]:
    """The OpenAPI document of every catalogue operation with a REST binding."""
    base = catalogue()["openapi"]
    paths: dict[str, dict[str, Any]] = {}
    for op_id, entry in operations().items():
        rest = entry.get("rest")
        if rest is None:
            continue
        item = paths.setdefault(rest["path"], {})
        names = path_parameters(rest["path"])
        if names and "parameters" not in item:
            item["parameters"] = [{"$ref": f"#/components/parameters/{n[0].upper()}{n[1:]}"} for n in names]
        item[rest["method"]] = _operation(op_id, entry)
    components: dict[str, Any] = {"securitySchemes": _components_refs(base["securitySchemes"])}
    for section in COMPONENT_SECTIONS:
        components[section] = _components_refs(catalogue()[section])
    document = {key: value for key, value in base.items() if key not in ("securitySchemes", "$comment")}
    return {**document, "paths": paths, "components": components}


def load_spec() -> dict[str, Any]:
    """The task API's OpenAPI document (the catalogue's REST bindings)."""
    return build_spec()


def render_yaml(spec: dict[str, Any]) -> str:
    """The document as YAML; a JSON round trip first, so shared values are written out, not aliased."""
    spec = json.loads(json.dumps(spec))
    # Collections of scalars on one line (`{type: string}`), as a person writes OpenAPI.
    return HEADER + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)


# Where no method matches (an unknown path, or a method the path does not serve), API Gateway
# answers MISSING_AUTHENTICATION_TOKEN: the same response type as an IAM method called without a
# signature, which must be 403 FORBIDDEN. So the deployed API routes every other method of a path
# and every other path to a MOCK integration that answers 404 NOT_FOUND itself.
NOT_FOUND_BODY = json.dumps(
    {"error": {"code": "NOT_FOUND", "message": "no resource at this path accepts this method", "details": []}}
)
ANY_METHOD = "x-amazon-apigateway-any-method"
CATCH_ALL_PATHS = ("/", "/{proxy+}")
AUTHORIZED_SCHEME = "clients"  # the Lambda REQUEST authorizer's scheme (schema/operations.json `callers`)


def _not_found() -> dict[str, Any]:
    """An ANY method that needs no credential and answers 404 from a MOCK integration."""
    return {
        "responses": {"404": {"description": "No resource at this path accepts this method"}},
        "security": [],
        "x-amazon-apigateway-integration": {
            "type": "mock",
            "requestTemplates": {"application/json": '{"statusCode": 404}'},
            "passthroughBehavior": "when_no_match",
            "responses": {"default": {"statusCode": "404", "responseTemplates": {"application/json": NOT_FOUND_BODY}}},
        },
    }


def gateway_body(spec: dict[str, Any], function_invoke_arn: str, authorizer_invoke_arn: str) -> dict[str, Any]:
    """The RestApi body: `spec` with every operation proxied to the function (AWS_PROXY, always POST
    to Lambda), the `clients` scheme's authorizer invoking the authorizer function, and 404
    catch-alls for what no operation serves."""
    document = copy.deepcopy(spec)
    for path_item in document["paths"].values():
        for method in HTTP_METHODS:
            if method in path_item:
                path_item[method]["x-amazon-apigateway-integration"] = {
                    "type": "aws_proxy",
                    "httpMethod": "POST",
                    "uri": function_invoke_arn,
                    "passthroughBehavior": "when_no_match",
                }
        path_item[ANY_METHOD] = _not_found()
    for path in CATCH_ALL_PATHS:
        document["paths"].setdefault(path, {ANY_METHOD: _not_found()})
    authorizer = document["components"]["securitySchemes"][AUTHORIZED_SCHEME]["x-amazon-apigateway-authorizer"]
    authorizer["authorizerUri"] = authorizer_invoke_arn
    # The key is checked by the authorizer, which hands API Gateway the caller's key for the usage plan.
    document["x-amazon-apigateway-api-key-source"] = "AUTHORIZER"
    return document


def main(write: Callable[[Path, str], Any] = Path.write_text) -> None:
    """`python -m infra.openapi`: write schema/tasks-api.yaml from the catalogue."""
    write(SPEC_PATH, render_yaml(build_spec()))


if __name__ == "__main__":
    main()
