"""Capped HTTP response reads: a body over `limits.responseBytes` fails the step with
`ResponseTooLarge`, and no more than the limit + 1 bytes are read from the connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aiwf import egress, http_client
from aiwf.errors import StepError
from aiwf.settings import EgressSettings, response_bytes

LIMIT = 10_000


class _Endless(BaseHTTPRequestHandler):
    """`/declared/N`: a Content-Length of N (then N bytes); `/chunked`, `/unframed`: bytes without end."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        kind, _, size = self.path.strip("/").partition("/")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if kind == "declared":
            self.send_header("Content-Length", size)
        elif kind == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            if kind == "declared":
                self.wfile.write(b"x" * int(size))
                return
            block = b"y" * 4096
            while True:
                self.wfile.write(b"1000\r\n" + block + b"\r\n" if kind == "chunked" else block)
        except OSError:
            pass  # the client hung up, as it should

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    loopback = egress.policy_from_settings(EgressSettings(True, False, ()), {})
    monkeypatch.setattr(egress, "current_policy", lambda: loopback)
    monkeypatch.setattr(http_client, "response_bytes", lambda: LIMIT)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_default_limit_is_one_mebibyte():
    assert response_bytes() == 1_048_576


def test_a_body_at_the_limit_is_read(server: str) -> None:
    assert http_client.call_http({"url": f"{server}/declared/{LIMIT}"}, {}) == "x" * LIMIT


@pytest.mark.parametrize("path", [f"/declared/{LIMIT + 1}", "/declared/50000000", "/chunked", "/unframed"])
def test_a_body_past_the_limit_fails_the_step(server: str, path: str) -> None:
    with pytest.raises(StepError) as caught:
        http_client.call_http({"url": server + path}, {})
    assert caught.value.error_name == "ResponseTooLarge" and not caught.value.retryable
    assert caught.value.details["limitBytes"] == LIMIT and str(LIMIT) in caught.value.message


class _Answer:
    """An HTTP answer whose body never ends; counts what is read from it."""

    def __init__(self, length: str = "") -> None:
        self.taken = 0
        self.length = length

    def getheader(self, name: str, default: str = "") -> str:
        return self.length or default

    def read(self, amount: int) -> bytes:
        self.taken += amount
        return b"z" * amount


def test_no_more_than_the_limit_plus_one_byte_is_read():
    answer = _Answer()
    with pytest.raises(egress.ResponseTooLarge):
        egress._read_body(answer, "http://example.com/", LIMIT)  # type: ignore[arg-type]
    assert answer.taken == LIMIT + 1


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    answer = _Answer(length=str(LIMIT + 1))
    with pytest.raises(egress.ResponseTooLarge):
        egress._read_body(answer, "http://example.com/", LIMIT)  # type: ignore[arg-type]
    assert answer.taken == 0
