"""`aiwf watch`: the live view over the GraphQL subscription, and its recovery after a dropped connection."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from aiwf_sdk.watch import FINAL, Board, Watcher

ROOT = Path(__file__).resolve().parents[2]
TRIAGE = yaml.safe_load((ROOT / "flows" / "document-triage.yaml").read_text())


def _start_urgent(api, stub) -> tuple[str, str]:
    """A document-triage task that waits for approval; returns (taskId, notify path)."""
    assert api.call("PUT", f"/flows/{TRIAGE['id']}", json=TRIAGE).status_code in (200, 201)
    path = f"/approve/{uuid.uuid4().hex}"
    task_input = {"text": "Outage! reply: urgent", "approvalUrl": stub.url + path}
    started = api.call("POST", "/tasks", json={"flowId": TRIAGE["id"], "input": task_input})
    assert started.status_code == 201, started.text
    return started.json()["taskId"], path


def _approve(api, stub, task_id: str, path: str) -> None:
    token = stub.wait_for(path)[0].body["resumeToken"]
    body = {"resumeToken": token, "status": "SUCCEEDED", "output": {"approved": True, "by": "ops"}}
    assert api.call("PUT", f"/tasks/{task_id}", json=body).status_code == 202


def _assert_in_seq_order_without_gaps(states: list[dict[str, Any]]) -> None:
    seqs = [state["seq"] for state in states if state.get("branchId") is None]
    assert seqs == list(range(1, seqs[-1] + 1)), seqs


def test_watch_prints_every_state_of_a_task_until_it_ends(api, stub, stack, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(stack.outputs))
    task_id, path = _start_urgent(api, stub)
    watching = subprocess.Popen(
        [str(ROOT / "bin" / "aiwf"), "--outputs", str(outputs), "--json", "watch", task_id, "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        api.wait_for(task_id, lambda state: state["status"] == "WAITING")
        _approve(api, stub, task_id, path)
        stdout, stderr = watching.communicate(timeout=90)
    finally:
        watching.kill()

    assert watching.returncode == 0, stderr
    states = [json.loads(line) for line in stdout.splitlines()]
    _assert_in_seq_order_without_gaps(states)
    assert [s["status"] for s in states][-1] == "SUCCEEDED"
    assert "WAITING" in [s["status"] for s in states]
    assert states[-1] == api.call("GET", f"/tasks/{task_id}").json()
    assert "resumeToken" not in stdout


def test_watch_needs_a_task_or_a_flow(stack, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(stack.outputs))
    result = subprocess.run(
        [str(ROOT / "bin" / "aiwf"), "--outputs", str(outputs), "watch"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "watch one TASK" in result.stderr


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 in front of the real-time endpoint that can cut every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.handlers: set[asyncio.Task] = set()
        self.connections = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.handlers.add(asyncio.current_task())
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def drop(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        """Cut everything and wait for the connection handlers, before the test's loop closes."""
        self.drop()
        self.server.close()
        for handler in self.handlers:
            handler.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


def test_watch_recovers_from_a_dropped_connection_through_the_history_query(api, stub, stack):
    task_id, path = _start_urgent(api, stub)
    seen: list[dict[str, Any]] = []

    async def scenario() -> Board:
        realtime = urlparse(stack.outputs["realtimeUrl"])
        proxy = DroppingProxy(realtime.port)
        port = await proxy.start()
        realtime_url = realtime._replace(netloc=f"127.0.0.1:{port}").geturl()
        watcher = Watcher(stack.outputs["graphqlUrl"], realtime_url, stack.outputs["apiKey"], retry_seconds=0.2)
        finished = asyncio.ensure_future(
            watcher.run(
                task_id=task_id,
                flow_id=None,
                on_state=seen.append,
                stop=lambda board: (board.task(task_id) or {}).get("status") in FINAL,
                idle_seconds=30,  # recovery must come from the reconnect, not from the idle re-check
            )
        )
        while not any(state["status"] == "WAITING" for state in seen):
            await asyncio.sleep(0.02)
        proxy.drop()  # the listener is cut off while the task goes on
        await asyncio.get_running_loop().run_in_executor(None, _approve, api, stub, task_id, path)
        board = await asyncio.wait_for(finished, 60)
        await proxy.close()
        assert proxy.connections >= 2
        return board

    loop = asyncio.new_event_loop()
    try:
        board = loop.run_until_complete(scenario())
    finally:
        loop.close()

    assert board.reconnects >= 1
    _assert_in_seq_order_without_gaps(seen)
    assert seen[-1]["status"] == "SUCCEEDED"
    assert [s["seq"] for s in seen if s.get("branchId") is None][-1] == api.call("GET", f"/tasks/{task_id}").json()[
        "seq"
    ]


def test_watch_flow_shows_the_flows_tasks_at_once_and_says_connected(api, stub, stack, tmp_path):
    """A task that waits changes nothing while it is watched: it shows only if the watch lists the
    flow's tasks when it starts."""
    flow = {**TRIAGE, "id": f"watch-flow-{uuid.uuid4().hex[:8]}"}
    assert api.call("PUT", f"/flows/{flow['id']}", json=flow).status_code == 201
    task_input = {"text": "Outage! reply: urgent", "approvalUrl": stub.url + f"/approve/{uuid.uuid4().hex}"}
    task_id = api.call("POST", "/tasks", json={"flowId": flow["id"], "input": task_input}).json()["taskId"]
    waiting = api.wait_for(task_id, lambda state: state["status"] == "WAITING")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(stack.outputs))

    run = subprocess.run(
        [
            str(ROOT / "bin" / "aiwf"),
            "--outputs",
            str(outputs),
            "--json",
            "watch",
            "--flow",
            flow["id"],
            "--timeout",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    assert f"connected to {stack.outputs['realtimeUrl']}, watching flow {flow['id']}" in run.stderr
    shown = [json.loads(line) for line in run.stdout.splitlines()]
    assert [state["taskId"] for state in shown] == [task_id]
    assert shown[0]["status"] == "WAITING" and shown[0]["seq"] == waiting["seq"]
