"""`tasks.start` (and `aiwf start`) never leaves a task it cannot name: a lost answer is retried with the same name."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from aiwf_sdk import Client, ServerError, UnavailableError


@pytest.fixture
def gateway() -> Iterator[dict[str, Any]]:
    """A task API that times out (504, as API Gateway does) `timeouts` times, then answers 201."""
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


def _client(url: str) -> Client:
    return Client(url, "key", start_retry_delays=(0.01, 0.01, 0.01))


def test_a_start_that_timed_out_is_sent_again_with_the_same_name(gateway):
    state = _client(gateway["url"]).tasks.start("hello", {"a": 1})
    assert state.task_id == "t-1"
    first, second = gateway["bodies"]
    assert first["name"].startswith("sdk-") and first == second  # the same idempotency key twice


def test_a_given_name_is_kept_and_a_lasting_outage_is_reported(gateway):
    gateway["timeouts"] = 10
    with pytest.raises(ServerError) as failure:
        _client(gateway["url"]).tasks.start("hello", {}, name="mine")
    assert (failure.value.status, failure.value.code) == (504, "HTTP_504")
    assert failure.value.message == "Endpoint request timed out"
    assert [body["name"] for body in gateway["bodies"]] == ["mine"] * 4


def test_no_answer_at_all_is_an_unavailable_error():
    closed = Client("http://127.0.0.1:9", "key", start_retry_delays=(0.01,))  # port 9: nothing listens
    with pytest.raises(UnavailableError) as failure:
        closed.tasks.start("hello")
    # on loopback, the local stack that is not running: said in one line, and how to start it
    assert failure.value.code == "UNAVAILABLE" and "no local stack is answering" in failure.value.message
