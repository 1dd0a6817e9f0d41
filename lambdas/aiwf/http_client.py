"""The `http` step (and `poll` checks of type http): one request, templates rendered from the context.

Non-2xx answers are step errors named `HttpError` with the status in `errorDetails`; a JSON
answer is parsed, anything else is kept as text. The request goes through the egress policy
(`aiwf.egress`): a refused URL, or a redirect to one, fails the step with `EgressDenied`.
A response body over `settings.response_bytes()` fails it with `ResponseTooLarge` (not
retryable), read no further than the limit: a flow cannot make a worker buffer an endless answer.
"""

from __future__ import annotations

import json
from typing import Any

from . import egress
from .errors import StepError
from .settings import response_bytes
from .templates import render

DEFAULT_TIMEOUT_SECONDS = 10
MAX_ERROR_BODY_CHARS = 2_000
_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _parse(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def call_http(config: dict[str, Any], context: dict[str, Any]) -> Any:
    """Send the request `config` describes; the parsed response body, or StepError."""
    method = str(config.get("method", "GET")).upper()
    url = str(render(config["url"], context))
    headers = {str(k): str(v) for k, v in (render(config.get("headers") or {}, context)).items()}
    data = None
    if "body" in config:
        body = render(config["body"], context)
        if isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
    timeout = config.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
    try:
        response = egress.request(
            method, url, headers=headers, body=data, timeout=timeout, max_body_bytes=response_bytes()
        )
    except (TimeoutError, OSError) as exc:
        raise StepError(
            "HttpError", f"{method} {url} failed: {exc}", details={"status": None, "url": url}, retryable=True
        ) from exc
    parsed = _parse(response.body, response.headers.get("Content-Type", ""))
    if 200 <= response.status < 300:
        return parsed
    if isinstance(parsed, str):
        parsed = parsed[:MAX_ERROR_BODY_CHARS]
    raise StepError(
        "HttpError",
        f"{method} {url} answered {response.status}",
        details={"status": response.status, "url": url, "body": parsed},
        retryable=response.status in _RETRYABLE_STATUSES,
    )
