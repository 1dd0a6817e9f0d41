"""Lambda's durable execution APIs on the embedded AWS's endpoint (moto 5.2.5 has none of them).

Requests under `/2025-12-01/durable-executions` and `/2025-12-01/durable-execution-callbacks`
(CheckpointDurableExecution, GetDurableExecutionState, StopDurableExecution, the callback APIs, ...)
go to the local durable execution service (`local.durable_service`, the SDK's testing server) with
the path as the client encoded it: an execution ARN holds `/`, which botocore sends as `%2F` and
werkzeug's decoded PATH_INFO would split. Every other request is moto's. While no service runs,
the paths are moto's too (which answers 404, as a region without durable functions would).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from local import durable_service
from local.moto_glue.swap import MethodSwap


def _dispatcher_class() -> type:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    return DomainDispatcherApplication


def _headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(key[5:].replace("_", "-"), value) for key, value in environ.items() if key.startswith("HTTP_")]
    if environ.get("CONTENT_TYPE"):
        found.append(("Content-Type", environ["CONTENT_TYPE"]))
    return found


def _call(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    service = durable_service.current()
    path = environ.get("PATH_INFO", "")
    if service is None or not path.startswith(durable_service.API_PREFIXES):
        return _swap.original(self, environ, start_response)
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or path
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    response = service.forward(environ["REQUEST_METHOD"], raw_uri, _headers(environ), body)
    kept = [(k, v) for k, v in response.headers.items() if k.lower() not in ("connection", "transfer-encoding")]
    start_response(f"{response.status_code} {response.reason}", kept)
    return [response.content]


class _Swap(MethodSwap):
    @property
    def original(self) -> Any:
        return self._original


_swap = _Swap(_dispatcher_class, "__call__", _call)


def serve_durable_apis() -> None:
    """Route the durable execution APIs to the local durable execution service (idempotent)."""
    _swap.install()
