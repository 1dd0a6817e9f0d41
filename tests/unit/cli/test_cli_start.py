"""`aiwf start` never leaves a task it cannot name: a lost answer is retried with the same name."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cli import api
from cli.api import TaskApiClient
from cli.errors import CliError, ExitCode


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A task API that times out (504, as API Gateway does) `timeouts` times, then answers 201."""
    monkeypatch.setattr(api, "START_RETRY_DELAYS_SECONDS", (0.01, 0.01, 0.01))
    seen: dict[str, Any] = {"bodies": [], "timeouts": 1}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen["bodies"].append(body)
            if len(seen["bodies"]) <= seen["timeouts"]:
                status, answer = 504, {"message": "Endpoint request timed out"}
            else:
                status, answer = 201, {"taskId": "t-1", "status": "PENDING"}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield seen
    server.shutdown()


def test_a_start_that_timed_out_is_sent_again_with_the_same_name(gateway):
    state = TaskApiClient(gateway["url"], "key").start("hello", {"a": 1}, None)
    assert state["taskId"] == "t-1"
    first, second = gateway["bodies"]
    assert first["name"].startswith("cli-") and first == second  # the same idempotency key twice


def test_a_given_name_is_kept_and_a_lasting_outage_is_reported(gateway):
    gateway["timeouts"] = 10
    with pytest.raises(CliError) as failure:
        TaskApiClient(gateway["url"], "key").start("hello", {}, "mine")
    assert failure.value.code == ExitCode.UNAVAILABLE
    assert [body["name"] for body in gateway["bodies"]] == ["mine"] * 4
