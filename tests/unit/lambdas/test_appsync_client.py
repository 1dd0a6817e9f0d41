"""The publisher's HTTP client: a request leaves in one write (head and body together)."""

from __future__ import annotations

from aiwf import appsync_client


def test_head_and_body_leave_in_one_write() -> None:
    connection = appsync_client._HTTPConnection("appsync.invalid")
    writes: list[bytes] = []
    connection.send = writes.append  # type: ignore[method-assign]
    connection.request("POST", "/graphql", body=b'{"query":"{x}"}', headers={"content-type": "application/json"})
    assert len(writes) == 1
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /graphql HTTP/1.1\r\n")
    assert b"Content-Length: 15" in head
    assert body == b'{"query":"{x}"}'


def test_a_streamed_body_is_still_sent() -> None:
    connection = appsync_client._HTTPConnection("appsync.invalid")
    writes: list[bytes] = []
    connection.send = writes.append  # type: ignore[method-assign]
    connection.request("POST", "/graphql", body=iter([b"ab", b"cd"]), headers={"content-length": "4"})
    assert b"".join(writes).endswith(b"\r\n\r\nabcd")


def test_an_api_that_refuses_connections_is_a_publish_error() -> None:
    """The publisher and the replayer report a down API per record (PublishError), not as a crash."""
    import socket

    import pytest

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(appsync_client.PublishError, match="ConnectionRefused"):
        appsync_client.call(f"http://127.0.0.1:{port}/graphql", "mutation { x }", {})
