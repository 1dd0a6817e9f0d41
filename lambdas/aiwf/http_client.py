"""The `http` step (and `poll` checks of type http): one request, templates rendered from the context.

Non-2xx answers are step errors named `HttpError` with the status in `errorDetails`; a JSON
answer is parsed, anything else is kept as text. Only http(s) URLs are allowed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from .errors import StepError
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
    if urlsplit(url).scheme not in ("http", "https"):
        raise StepError("HttpError", f"only http(s) URLs are allowed, got {url!r}", details={"url": url})
    headers = {str(k): str(v) for k, v in (render(config.get("headers") or {}, context)).items()}
    data = None
    if "body" in config:
        body = render(config["body"], context)
        if isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    timeout = config.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _parse(response.read(), response.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        body = _parse(exc.read(), exc.headers.get("Content-Type", "") if exc.headers else "")
        if isinstance(body, str):
            body = body[:MAX_ERROR_BODY_CHARS]
        raise StepError(
            "HttpError",
            f"{method} {url} answered {exc.code}",
            details={"status": exc.code, "url": url, "body": body},
            retryable=exc.code in _RETRYABLE_STATUSES,
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StepError(
            "HttpError", f"{method} {url} failed: {reason}", details={"status": None, "url": url}, retryable=True
        ) from exc
