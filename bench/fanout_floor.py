"""The fan-out alone: how long N real gql clients take to yield a state once the server publishes it.

    .venv/bin/python -m bench.fanout_floor [--changes 40] [--subscribers 1 10 100] [--small]

`bench/fanout.py` times commit -> delivery; this times only its last leg, publish -> delivery, on
the same machine with the same clients (`bench.fanout`'s subscriber processes), twice:

- `hub`: the local stack's real-time hub (`RealtimeHub.publish`, called from the bench's thread with
  a finished mutation result, so one wake-up of the server loop is included);
- `raw`: the least a Python server can do: the `websockets` library's own asyncio server speaking
  just enough of the AppSync protocol, frames rendered beforehand and written with its `broadcast`.

Whatever `hub` costs beyond `raw` is the emulator's fan-out; `raw` itself is the floor that the
clients and the machine set, and no change before the publish (stream, Lambda, HTTP, GraphQL) can
take commit -> delivery below it. `--small` is 5 changes to 2 subscribers (the suite runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.fanout import (
    GAP_SECONDS,
    REPO_ROOT,
    SMALL_CHANGES,
    SMALL_HELP,
    SMALL_SUBSCRIBERS,
    latencies,
    report,
    start_subscribers,
    wait_subscribed,
)


def _time_publishes(
    outputs: dict[str, Any], subscribed: Callable[[], int], publish: Callable[[str, int], None], n: int, changes: int
) -> list[float]:
    """N clients subscribe to a new task; one state per seq is published, paced as bench.fanout paces
    its commits; publish -> delivery for each, in ms."""
    task_id = f"floor-{uuid.uuid4().hex[:10]}"
    seqs = list(range(2, 2 + changes))
    procs = start_subscribers(outputs, task_id, n, seqs)
    wait_subscribed(subscribed, n)
    sent: dict[int, float] = {}
    for seq in seqs:
        sent[seq] = time.time()
        publish(task_id, seq)
        time.sleep(GAP_SECONDS)
    return latencies(procs, sent, n, changes)


def hub_floor(stack: Any, n: int, changes: int) -> list[float]:
    hub = stack.appsync.hub
    base = hub.count()

    def publish(task_id: str, seq: int) -> None:
        state = {
            "taskId": task_id,
            "flowId": "bench",
            "flowVersion": 1,
            "status": "RUNNING",
            "seq": seq,
            "tenantId": "default",
        }
        hub.publish("updateWorkflowState", state, "updateWorkflowState")

    return _time_publishes(stack.outputs, lambda: hub.count() - base, publish, n, changes)


class RawServer:
    """connection_init -> connection_ack, start -> start_ack, stop -> complete; nothing else."""

    def __init__(self) -> None:
        self.subscriptions: list[tuple[Any, str]] = []
        self._ready = threading.Event()
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        threading.Thread(target=self._run, name="raw-floor", daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        import uvloop
        from websockets.asyncio.server import serve
        from websockets.exceptions import ConnectionClosed

        async def handler(websocket: Any) -> None:
            with contextlib.suppress(ConnectionClosed):
                await serve_one(websocket)

        async def serve_one(websocket: Any) -> None:
            async for raw in websocket:
                message = json.loads(raw)
                if message["type"] == "connection_init":
                    await websocket.send('{"type":"connection_ack","payload":{"connectionTimeoutMs":300000}}')
                elif message["type"] == "start":
                    await websocket.send(json.dumps({"type": "start_ack", "id": message["id"]}))
                    self.subscriptions.append((websocket, message["id"]))
                elif message["type"] == "stop":
                    self.subscriptions = [s for s in self.subscriptions if s[0] is not websocket]
                    await websocket.send(json.dumps({"type": "complete", "id": message["id"]}))

        async def main() -> None:
            async with serve(handler, "127.0.0.1", 0, subprotocols=["graphql-ws"], compression=None) as server:
                self.port = server.sockets[0].getsockname()[1]
                self.loop = asyncio.get_running_loop()
                self._ready.set()
                await asyncio.Future()

        uvloop.run(main())

    def publish(self, payload: str) -> None:
        from websockets.asyncio.server import broadcast

        def send() -> None:
            for websocket, sub_id in self.subscriptions:
                broadcast([websocket], f'{{"type":"data","id":{json.dumps(sub_id)},"payload":{payload}}}')

        assert self.loop is not None
        self.loop.call_soon_threadsafe(send)


def raw_floor(server: RawServer, n: int, changes: int) -> list[float]:
    outputs = {
        "graphqlUrl": "http://127.0.0.1/graphql",
        "apiKey": "unused",
        "realtimeUrl": f"ws://127.0.0.1:{server.port}/",
    }
    server.subscriptions.clear()

    def publish(task_id: str, seq: int) -> None:
        state = {"taskId": task_id, "branchId": None, "seq": seq, "status": "RUNNING"}
        server.publish(json.dumps({"data": {"workflowStateUpdated": state}}, separators=(",", ":")))

    return _time_publishes(outputs, lambda: len(server.subscriptions), publish, n, changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--changes", type=int, default=40, help="states published per N")
    parser.add_argument("--small", action="store_true", help=SMALL_HELP)
    args = parser.parse_args(argv)
    if args.small:
        args.subscribers, args.changes = SMALL_SUBSCRIBERS, SMALL_CHANGES
    logging.basicConfig(level=logging.WARNING)
    sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "lambdas")]
    from local.stack import LocalStack

    with LocalStack(stage="dev", port=0) as stack:
        hub_floor(stack, 1, 5)  # warm-up
        for n in args.subscribers:
            report(n, hub_floor(stack, n, args.changes), "hub: ")
    server = RawServer()
    raw_floor(server, 1, 5)
    for n in args.subscribers:
        report(n, raw_floor(server, n, args.changes), "raw: ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
