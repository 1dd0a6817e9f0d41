"""A small client of the task REST API that turns every error body into a CliError."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlparse

import requests

from cli.errors import CliError, ExitCode, exit_code_for_status

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# After a 5xx or no answer, a start is sent again (same name) after these pauses.
START_RETRY_DELAYS_SECONDS = (1.0, 2.0, 4.0)


class TaskApiClient:
    def __init__(self, url: str, api_key: str, timeout: float = 30) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers.update({"x-api-key": api_key, "content-type": "application/json"})

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._session.request(
                method, f"{self._url}{path}", json=json, params=params, timeout=self._timeout
            )
        except requests.ConnectionError as exc:
            raise unreachable(self._url, exc) from None  # one line, not urllib3's chain
        except requests.RequestException as exc:
            raise CliError(f"cannot reach the task API at {self._url}: {exc}", ExitCode.UNAVAILABLE) from exc
        if response.status_code < 400:
            return response.json()
        raise _api_error(response)

    # -- the API, one method per operation ------------------------------------------------------
    def put_flow(self, flow_id: str, document: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/flows/{flow_id}", json=document)

    def get_flow(self, flow_id: str, version: int | None = None) -> dict[str, Any]:
        return self.call("GET", f"/flows/{flow_id}", params={"version": version} if version else None)

    def list_flows(self, limit: int | None = None, next_token: str | None = None) -> dict[str, Any]:
        params = {key: value for key, value in (("limit", limit), ("nextToken", next_token)) if value is not None}
        return self.call("GET", "/flows", params=params)

    def retire_flow(self, flow_id: str) -> dict[str, Any]:
        return self.call("DELETE", f"/flows/{flow_id}")

    def start(self, flow_id: str, task_input: Any, name: str | None) -> dict[str, Any]:
        """Start a task, always with an idempotency `name` (one is made up when none is given), so
        a start whose answer was lost (a gateway timeout, a dropped connection) is sent again and
        finds the task the first attempt created instead of leaving one nobody knows the id of."""
        body = {"flowId": flow_id, "input": task_input, "name": name or f"cli-{uuid.uuid4()}"}
        for delay in (*START_RETRY_DELAYS_SECONDS, None):
            try:
                return self.call("POST", "/tasks", json=body)
            except CliError as exc:
                if exc.code != ExitCode.UNAVAILABLE or delay is None or isinstance(exc, NoLocalStack):
                    raise
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get(self, task_id: str) -> dict[str, Any]:
        return self.call("GET", f"/tasks/{task_id}")

    def list(self, **params: Any) -> dict[str, Any]:
        return self.call("GET", "/tasks", params={key: value for key, value in params.items() if value is not None})

    def resume(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/tasks/{task_id}", json=body)

    # -- task control ---------------------------------------------------------------------------
    def cancel(self, task_id: str, reason: str | None = None) -> dict[str, Any]:
        return self.call("POST", f"/tasks/{task_id}/cancel", json={"reason": reason} if reason else {})

    def redrive(self, task_id: str) -> dict[str, Any]:
        return self.call("POST", f"/tasks/{task_id}/redrive")

    def heartbeat(self, task_id: str, token: str) -> dict[str, Any]:
        return self.call("POST", f"/tasks/{task_id}/heartbeat", json={"resumeToken": token})

    def history(self, task_id: str) -> list[dict[str, Any]]:
        """Every page of the history (a page ends early when its answer would be too large)."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.call("GET", f"/tasks/{task_id}/history", params={"nextToken": token} if token else None)
            items += page["items"]
            token = page.get("nextToken")
            if not token:
                return items


class NoLocalStack(CliError):
    """Nothing listens at the local stack's address: it is not running (no retry helps)."""


def unreachable(url: str, exc: Exception) -> CliError:
    """The error for a connection that failed: for the local stack, how to start it."""
    if urlparse(url).hostname in LOOPBACK_HOSTS:
        return NoLocalStack(f"no local stack is answering at {url}: start it with make dev", ExitCode.UNAVAILABLE)
    return CliError(f"cannot reach the task API at {url}: {_reason(exc)}", ExitCode.UNAVAILABLE)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection failure (refused, unknown host, ...), without the chain."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, BaseException):
            return _reason(arg)
    text = str(exc)
    return text.rsplit(": ", 1)[-1] if ": " in text else text or type(exc).__name__


def _api_error(response: requests.Response) -> CliError:
    code = exit_code_for_status(response.status_code)
    try:
        body = response.json()
    except ValueError:
        return CliError(f"HTTP {response.status_code}: {response.text[:200]}", code)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        hint = " (check the API key)" if error.get("code") == "FORBIDDEN" else ""
        return CliError(f"{error.get('code')}: {error.get('message')}{hint}", code, error.get("details"))
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers (403 Forbidden, 502)
        hint = " (check the API key)" if response.status_code == 403 else ""
        return CliError(f"HTTP {response.status_code}: {body['message']}{hint}", code)
    return CliError(f"HTTP {response.status_code}: {body}", code)
