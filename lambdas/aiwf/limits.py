"""The limits the APIs enforce on what callers send, and the bounded JSON parser behind them.

Python's `json` recurses once per nesting level (a 10k-deep document raises RecursionError) and
refuses integers of more than 4,300 digits with a ValueError deep inside the parser; DynamoDB
stops at 400 KB per item and Lambda at 6 MB per request and answer. Each of those surfaced as a
5xx. Here every limit is checked up front and refused with its own code and the limit in the
message, so a caller learns what to change. docs/operations.md ("Limits") lists them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Request bodies of the task API: far below Lambda's 6 MB request payload and API Gateway's 10 MB.
MAX_BODY_BYTES = 1024 * 1024
# Nesting of arrays and objects in a request body (a flow with parallel branches needs about 10).
MAX_JSON_DEPTH = 64
# Characters of one number literal (sign, digits, fraction, exponent): enough for any int64 or
# double, far below Python's 4,300-digit integer limit.
MAX_NUMBER_CHARS = 100
# A flow document is one DynamoDB item (400 KB, with its other attributes): its compact JSON
# stays well below, and so does its step count (every step of every branch counts).
MAX_FLOW_BYTES = 300 * 1024
MAX_FLOW_STEPS = 5000

# Strings (with escapes) or one bracket: what the depth scan has to look at.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class LimitExceeded(ValueError):
    """A request over one of the limits: `code` is the API error code, the message names the limit."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects in `text` nest deeper than `limit`, found without recursion
    (brackets inside strings do not count). Malformed text is left to the parser."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise LimitExceeded(
            "NUMBER_TOO_LARGE",
            f"a number in the body has {len(text)} characters; the limit is {MAX_NUMBER_CHARS}",
        )
    if any(c in text for c in ".eE"):
        value = float(text)
        if not math.isfinite(value):
            raise LimitExceeded("NUMBER_TOO_LARGE", f"the number {text} is out of the double-precision range")
        return value
    return int(text)


def _constant(name: str) -> Any:
    raise LimitExceeded("MALFORMED_JSON", f"request body is not valid JSON: {name} is not a JSON value")


def parse_json(raw: bytes | str, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`raw` as a JSON value, or LimitExceeded (BODY_TOO_LARGE, JSON_TOO_DEEP, NUMBER_TOO_LARGE,
    MALFORMED_JSON); never RecursionError or a bare ValueError."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise LimitExceeded("BODY_TOO_LARGE", f"the body is {size} bytes; the limit is {max_bytes} bytes")
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise LimitExceeded("MALFORMED_JSON", f"request body is not UTF-8: {exc.reason}") from exc
    if json_depth_exceeds(text, max_depth):
        raise LimitExceeded("JSON_TOO_DEEP", f"the body nests arrays/objects deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise LimitExceeded("MALFORMED_JSON", f"request body is not valid JSON: {exc}") from exc


def flow_limit_error(document: dict[str, Any]) -> LimitExceeded | None:
    """Why a flow document is too big to register (FLOW_TOO_LARGE, TOO_MANY_STEPS), or None."""
    size = len(json.dumps(document, separators=(",", ":"), default=str).encode())
    if size > MAX_FLOW_BYTES:
        return LimitExceeded(
            "FLOW_TOO_LARGE", f"the flow document is {size} bytes as compact JSON; the limit is {MAX_FLOW_BYTES} bytes"
        )
    steps = _count_steps(document)
    if steps > MAX_FLOW_STEPS:
        return LimitExceeded("TOO_MANY_STEPS", f"the flow has {steps} steps; the limit is {MAX_FLOW_STEPS}")
    return None


def _count_steps(graph: Any) -> int:
    """Steps of a step graph and of its parallel branches (bounded depth: branches do not nest)."""
    steps = graph.get("steps") if isinstance(graph, dict) else None
    if not isinstance(steps, dict):
        return 0
    count = len(steps)
    for step in steps.values():
        if not isinstance(step, dict):
            continue
        for branch in step.get("branches") or ():
            count += _count_steps(branch)
        for_each = step.get("forEach")
        if isinstance(for_each, dict):
            count += _count_steps(for_each.get("branch"))
    return count
