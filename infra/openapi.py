"""The task API's OpenAPI document with the API Gateway integration added to every operation.

`schema/tasks-api.yaml` is the contract; this adds only how API Gateway reaches the function,
so the same document is the RestApi body, the docs and the local router's table.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).resolve().parent.parent / "schema" / "tasks-api.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def with_lambda_integration(spec: dict[str, Any], function_invoke_arn: str) -> dict[str, Any]:
    """A copy of `spec` whose operations proxy to the function (AWS_PROXY, always POST to Lambda)."""
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
    document["x-amazon-apigateway-api-key-source"] = "HEADER"
    return document
