"""A tiny HTTP server on 127.0.0.1 standing in for the external systems a flow talks to.

It records every request (so a test learns a wait's resume token from the notify POST without
the API ever showing it) and answers from per-path scripts: a list of (status, body) replies,
the last one repeating.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StubServer:
    server: ThreadingHTTPServer
    requests: list[Recorded] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, path: str, *replies: tuple[int, Any]) -> str:
        """Script the answers of `path`; returns its full URL."""
        with self.lock:
            self.scripts[path] = list(replies)
        return f"{self.url}{path}"

    def hold(self, path: str) -> threading.Event:
        """Answer requests to `path` only once the returned event is set (a step that hangs)."""
        gate = threading.Event()
        with self.lock:
            self.gates[path] = gate
        return gate

    def received(self, path: str) -> list[Recorded]:
        with self.lock:
            return [request for request in self.requests if request.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 20) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.received(path)
            if len(seen) >= count:
                return seen
            time.sleep(0.02)
        raise AssertionError(f"{path} received {len(self.received(path))} request(s), expected {count}")

    def _answer(self, path: str) -> tuple[int, Any]:
        with self.lock:
            script = self.scripts.get(path)
            if not script:
                return 200, {"ok": True}
            return script.pop(0) if len(script) > 1 else script[0]


def start_stub() -> StubServer:
    stub: StubServer

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            path = self.path.split("?")[0]
            with stub.lock:
                stub.requests.append(Recorded(self.command, path, dict(self.headers), body))
            with stub.lock:
                gate = stub.gates.get(path)
            if gate is not None:
                gate.wait(60)
            status, reply = stub._answer(path)
            payload = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(reply, str) else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub = StubServer(server=server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return stub
