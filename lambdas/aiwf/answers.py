"""Task states as the APIs answer them, never larger than a Lambda answer may be.

A task's `output`, `error` or `waitingFor` can be megabytes (stored in S3 as a claim check above
the payload threshold), and Lambda refuses answers over 6 MB: one such task used to break every
list that included it. So an answer shows a claim-checked value as a **reference**
`{"$ref": <presigned GET URL>, "sizeBytes": <size of its JSON>}` unless it fits the answer's
inline allowance (`GET /tasks/{id}` and `getWorkflowState` inline up to `INLINE_VALUE_BYTES`;
lists, histories and subscriptions always reference), and lists and histories end a page early
when the next item would pass `PAGE_BUDGET_BYTES` (the page's `nextToken`, or `afterSeq`, goes on).
A large error keeps its shape: `errorName`, a shortened `errorMessage`, and `errorDetails` as the
reference to the whole stored error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import payloads
from .repository import tenant_of

REF_KEY = "$ref"
# Raw JSON of claim-checked values one GET may inline; escaping inside the proxy or GraphQL
# answer at most doubles it, so with the inline attributes the answer stays under 6 MB.
INLINE_VALUE_BYTES = 2 * 1024 * 1024
# A list or history page stops before its encoded items pass this (Lambda's answer limit is 6 MB).
PAGE_BUDGET_BYTES = 4 * 1024 * 1024
# A referenced error keeps this much of its message.
ERROR_MESSAGE_CHARS = 4096
LINK_SECONDS = 3600
_SCALARS = ("flowId", "flowVersion", "status", "seq", "currentStep", "branchId", "startedAt", "updatedAt")


def reference(ref: payloads.StoredRef) -> dict[str, Any]:
    """The reference shown instead of a large value: a link to its JSON, and its size."""
    return {REF_KEY: payloads.presigned_url(ref.key, LINK_SECONDS), "sizeBytes": ref.size}


def _error_view(item: dict[str, Any], ref: payloads.StoredRef) -> dict[str, Any]:
    error = payloads.decode(item, "error") or {}
    message = error.get("errorMessage")
    if isinstance(message, str) and len(message) > ERROR_MESSAGE_CHARS:
        message = message[:ERROR_MESSAGE_CHARS] + "... (shortened; errorDetails links to the whole error)"
    return {
        "errorName": error.get("errorName"),
        "errorMessage": message,
        "errorDetails": reference(ref),
        "retryable": error.get("retryable", False),
        "stepId": error.get("stepId"),
        "branchId": error.get("branchId"),
    }


def public_state(item: dict[str, Any], *, inline_bytes: int = 0) -> dict[str, Any]:
    """The WorkflowState (plain JSON values) of a deserialized task or history item: no context,
    no token; claim-checked values inline while they fit `inline_bytes` in total, else references."""
    budget = inline_bytes
    values: dict[str, Any] = {}
    for name in ("waitingFor", "output", "error"):
        ref = payloads.stored_ref(item, name)
        if ref is None:
            values[name] = payloads.decode(item, name)
        elif ref.size <= budget:
            values[name] = payloads.decode(item, name)
            budget -= ref.size
        elif name == "error":
            values[name] = _error_view(item, ref)
        else:
            values[name] = reference(ref)
    task_id = item["taskId"]
    if isinstance(item.get("branchOf"), str):
        task_id = json.loads(item["branchOf"]).get("taskId", task_id)
    state = {"taskId": task_id, **{name: item.get(name) for name in _SCALARS}, **values}
    state["redriveCount"] = item.get("redriveCount", 0)
    state["tenantId"] = tenant_of(item)
    order = ("taskId", "flowId", "flowVersion", "status", "seq", "currentStep", "branchId")
    tail = ("waitingFor", "output", "error", "startedAt", "updatedAt", "redriveCount", "tenantId")
    return {name: state[name] for name in (*order, *tail)}


class PageBudget:
    """Admits items to a page while their encoded size stays within the budget (always the first,
    which is bounded by the inline threshold and references)."""

    def __init__(self, measure: Callable[[dict[str, Any]], int], budget: int = PAGE_BUDGET_BYTES) -> None:
        self._measure = measure
        self._left = budget
        self._count = 0

    def admit(self, shown: dict[str, Any]) -> bool:
        size = self._measure(shown)
        if self._count and size > self._left:
            return False
        self._left -= size
        self._count += 1
        return True


def proxy_size(shown: dict[str, Any]) -> int:
    """Bytes an item takes in an API Gateway proxy answer (its JSON, escaped again as the body string)."""
    return len(json.dumps(json.dumps(shown, default=str)))


def json_size(shown: dict[str, Any]) -> int:
    """Bytes an item takes in a resolver's answer."""
    return len(json.dumps(shown, default=str))
