"""A flow document as a client hands it in (REST `PUT /flows/{flowId}`, GraphQL `putFlow`): the one
place that checks it before the flow store registers it, so both APIs refuse the same documents
with the same codes."""

from __future__ import annotations

import re
from typing import Any

from .errors import BadRequest
from .flows import validation_errors
from .limits import flow_limit_error
from .operations import FLOW_ID_PATTERN

READ_ONLY_FLOW_FIELDS = ("flowId", "version", "createdAt")


def check_flow_id(flow_id: str) -> None:
    if not isinstance(flow_id, str) or not re.fullmatch(FLOW_ID_PATTERN, flow_id):
        raise BadRequest(f"flowId {flow_id!r} must match {FLOW_ID_PATTERN}", code="INVALID_FLOW_ID")


def checked_document(document: Any, flow_id: str | None = None) -> dict[str, Any]:
    """The document to register (read-only fields dropped, `id` defaulting to `flow_id`), or
    BadRequest with every problem: INVALID_FLOW, FLOW_ID_MISMATCH, INVALID_FLOW_ID, a limit's code."""
    if not isinstance(document, dict):
        raise BadRequest("a flow document is a JSON object", code="INVALID_FLOW")
    document = {k: v for k, v in document.items() if k not in READ_ONLY_FLOW_FIELDS}
    if flow_id is not None:
        check_flow_id(flow_id)
        document.setdefault("id", flow_id)
        if document["id"] != flow_id:
            raise BadRequest(
                f"the document's id {document['id']!r} differs from the path's {flow_id!r}",
                code="FLOW_ID_MISMATCH",
            )
    elif not isinstance(document.get("id"), str):
        raise BadRequest("a flow document needs an `id`", code="INVALID_FLOW")
    else:
        check_flow_id(document["id"])
    too_big = flow_limit_error(document)
    if too_big is not None:
        raise BadRequest(too_big.message, code=too_big.code)
    errors = validation_errors(document)
    if errors:
        raise BadRequest(f"the flow document has {len(errors)} error(s)", details=errors, code="INVALID_FLOW")
    return document
