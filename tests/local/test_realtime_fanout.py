"""The real-time hub's fan-out sends: straight from the server loop when a connection is idle, and
still in order (and without holding up others) when a client's socket cannot take more yet."""

from __future__ import annotations

import asyncio
from typing import Any

from local.appsync_realtime import Connection, RealtimeHub, _enqueue_all


class FakeSocket:
    """The server's ASGI `send`, recording each frame; while `gate` is not set, a send waits like a
    full socket buffer."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def asgi_send(self, message: dict[str, Any]) -> None:
        await self.gate.wait()
        self.sent.append(message["text"])


def _connection(socket: FakeSocket) -> Connection:
    return Connection(socket.asgi_send, asyncio.get_running_loop())


def _run(scenario: Any) -> Any:
    """Like asyncio.run, but leaves the thread's current event loop alone (Pulumi's runtime in other
    tests of this process reads it)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(scenario)
    finally:
        loop.close()


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_an_idle_connection_gets_the_frame_at_once() -> None:
    async def scenario() -> list[str]:
        socket = FakeSocket()
        _enqueue_all([(_connection(socket), "data-1")])
        return list(socket.sent)  # no turn of the loop in between

    assert _run(scenario()) == ["data-1"]


def test_a_waiting_send_keeps_order_and_holds_up_no_one() -> None:
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        hub: Any = RealtimeHub.__new__(RealtimeHub)
        slow, fast = FakeSocket(), FakeSocket()
        slow_connection, fast_connection = _connection(slow), _connection(fast)
        writer = asyncio.ensure_future(hub._writer(slow_connection))
        slow.gate.clear()
        loop = asyncio.get_running_loop()  # both paths reach the loop as `publish` and `send` do
        loop.call_soon_threadsafe(_enqueue_all, [(slow_connection, "data-1"), (fast_connection, "data-1")])
        slow_connection.send_text("ka")  # queued behind the frame that is still waiting
        loop.call_soon_threadsafe(_enqueue_all, [(slow_connection, "data-2"), (fast_connection, "data-2")])
        await _settle()
        assert fast.sent == ["data-1", "data-2"]  # the slow client held up no one
        before = list(slow.sent)
        slow.gate.set()
        await _settle()
        slow_connection.send_text(None)
        await writer
        return before, slow.sent, fast.sent

    before, slow_sent, fast_sent = _run(scenario())
    assert before == []
    assert slow_sent == ["data-1", "ka", "data-2"]
    assert fast_sent == ["data-1", "data-2"]
