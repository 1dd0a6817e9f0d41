"""A SigV4-signed GraphQL call to AppSync with the function's own credentials (IAM auth mode).

botocore signs the request exactly as the AWS SDKs do; the HTTP call itself uses http.client with a
kept-alive connection, so the publisher needs no third-party HTTP client in its layer and a warm
function does not pay a TLS handshake per record.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

TIMEOUT_SECONDS = 10


class PublishError(Exception):
    """AppSync refused or failed the call; the stream will retry the record."""


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def _region(url: str) -> str:
    """`<id>.appsync-api.<region>.amazonaws.com`, else the function's own region."""
    parts = (urlparse(url).hostname or "").split(".")
    if "appsync-api" in parts and parts.index("appsync-api") + 1 < len(parts):
        return parts[parts.index("appsync-api") + 1]
    return _session().region_name or "us-east-1"


class _OneWrite:
    """http.client writes a request's head and its body separately: with TCP_NODELAY (below) that is
    two packets, and the server parses the head, then waits a turn of its loop for the body. This
    sends a bytes body in the same write as the head."""

    _buffer: list[bytes]

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if not isinstance(message_body, bytes) or encode_chunked:
            super()._send_output(message_body, encode_chunked)  # type: ignore[misc]
            return
        self._buffer.extend((b"", b""))
        head = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(head + message_body)  # type: ignore[attr-defined]


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):
    pass


class _Connections(threading.local):
    """One kept-alive connection per endpoint and thread: a warm function reuses it across invocations."""

    def __init__(self) -> None:
        self.by_endpoint: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def get(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        key = (scheme, netloc)
        connection = self.by_endpoint.get(key)
        if connection is None:
            kind = _HTTPSConnection if scheme == "https" else _HTTPConnection
            connection = self.by_endpoint[key] = kind(netloc, timeout=TIMEOUT_SECONDS)
        if connection.sock is None:
            connection.connect()
            # Small request/response pairs on a kept-alive socket: without this, Nagle's algorithm
            # and delayed ACKs add ~40 ms to every call after the first.
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def drop(self, scheme: str, netloc: str) -> None:
        connection = self.by_endpoint.pop((scheme, netloc), None)
        if connection is not None:
            connection.close()


_connections = _Connections()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST over the kept-alive connection; one retry on a connection the server had closed."""
    parts = urlparse(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    for attempt in (1, 2):
        try:
            connection = _connections.get(parts.scheme, parts.netloc)  # connects: refused when the API is down
            connection.request("POST", path or "/", body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest) as exc:
            _connections.drop(parts.scheme, parts.netloc)
            if attempt == 2:
                raise PublishError(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            _connections.drop(parts.scheme, parts.netloc)
            raise PublishError(f"{type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable")


def call(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """POST one operation signed for the `appsync` service; the `data`, or PublishError."""
    body = json.dumps({"query": query, "variables": variables}, separators=(",", ":"))
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    credentials = _session().get_credentials()
    if credentials is None:
        raise PublishError("no credentials to sign the request with")
    SigV4Auth(credentials.get_frozen_credentials(), "appsync", _region(url)).add_auth(request)
    status, raw = _post(url, body.encode(), dict(request.headers))
    if status >= 300:
        raise PublishError(f"HTTP {status}: {raw[:500]!r}")
    try:
        answer = json.loads(raw or b"{}")
    except ValueError as exc:
        raise PublishError(f"not JSON: {raw[:200]!r}") from exc
    if answer.get("errors"):
        raise PublishError(json.dumps(answer["errors"])[:1000])
    return answer.get("data") or {}
