"""Many tasks at once on the local stack, and a count of everything that came out.

    .venv/bin/python -m bench.load [--tasks 200] [--concurrency 50] [--steps 5]
    .venv/bin/python -m bench.load --tasks 1000 --over 60        # 1,000 starts spread over a minute
    .venv/bin/python -m bench.load --outputs .local/outputs.json  # against a running `make dev`
    .venv/bin/python -m bench.load --throughput [--steps 1000]     # steps/s of one task, 1k vs 20k records
    .venv/bin/python -m bench.load --small                         # both, a few steps (what the suite runs)

Without `--outputs` it starts its own stack (`python -m local` on a free port) and stops it after.
Every task runs a flow of `--steps` `transform` steps and a `succeed`. One subscriber (an
unmodified gql AppSync client, filtered by the run's flowId) listens throughout. Printed:
- tasks: started, terminal by status, stuck (not terminal when the run gives up);
- records: tasks whose `seq` differs from their last history record, histories with a gap;
- delivery: messages, duplicates, missing, phantom (a state no history record has), tasks whose
  messages arrived out of `seq` order;
- 5xx answers from the APIs, and p50/p99 start latency, tasks/s and steps/s.
The counts are what must hold (0 stuck, 0 duplicates, 0 missing, ...); the rates are figures.

`--throughput` measures inline steps per second of ONE task (a `transform` step and a `choice`
in a loop, `--steps` steps in all), first on a fresh stack (about 1,000 stored history records
once it ran) and again after a filler task brought the history table to 20,000 records: the two
figures show whether a step costs more as the tables grow.
`--small` is 5 tasks of 2 steps, then `--throughput` with 10 steps at ~10 and ~100 records, on one stack.
`tests/e2e/test_e2e_load.py` runs a small version of the same check in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from tests.sigv4 import SigV4

REPO_ROOT = Path(__file__).resolve().parent.parent
FINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def transform_flow(flow_id: str, steps: int) -> dict[str, Any]:
    """`steps` transform steps in a row, each adding to a counter, then succeed."""
    names = [f"s{n}" for n in range(steps)]
    document: dict[str, Any] = {"id": flow_id, "startAt": names[0], "steps": {}}
    for index, name in enumerate(names):
        following = names[index + 1] if index + 1 < steps else "done"
        document["steps"][name] = {
            "type": "transform",
            "value": {"n": index, "from": "{{ input.k }}"},
            "resultPath": f"r.{name}",
            "next": following,
        }
    document["steps"]["done"] = {"type": "succeed"}
    return document


@dataclass
class Report:
    """What came out of one run; `problems()` lists every count that is not what must hold."""

    started: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    stuck: int = 0
    seq_mismatch: int = 0
    history_gaps: int = 0
    records: int = 0
    messages: int = 0
    duplicates: int = 0
    missing: int = 0
    phantom: int = 0
    out_of_order_tasks: int = 0
    server_errors: Counter[str] = field(default_factory=Counter)
    start_latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def problems(self) -> list[str]:
        found = []
        for name in ("stuck", "seq_mismatch", "history_gaps", "duplicates", "missing", "phantom", "out_of_order_tasks"):
            if getattr(self, name):
                found.append(f"{name}={getattr(self, name)}")
        if self.server_errors:
            found.append(f"5xx={dict(self.server_errors)}")
        if sum(self.statuses.values()) != self.started:
            found.append(f"started={self.started} but terminal={sum(self.statuses.values())}")
        return found

    def lines(self) -> list[str]:
        latencies = sorted(self.start_latencies) or [0.0]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return [
            f"tasks: started {self.started}, terminal {dict(self.statuses)}, stuck {self.stuck}",
            f"records: {self.records} history records, seq mismatches {self.seq_mismatch}, "
            f"histories with a gap {self.history_gaps}",
            f"delivery: {self.messages} messages, duplicates {self.duplicates}, missing {self.missing}, "
            f"phantom {self.phantom}, tasks out of order {self.out_of_order_tasks}",
            f"5xx: {sum(self.server_errors.values())} {dict(self.server_errors) or ''}".rstrip(),
            f"start latency: p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms",
            f"rate: {self.started / self.seconds:.1f} tasks/s, {self.records / self.seconds:.1f} records/s "
            f"over {self.seconds:.1f} s",
        ]


class Subscriber:
    """One gql AppSync real-time client on its own thread and loop, filtered by flowId."""

    def __init__(self, outputs: dict[str, Any], flow_id: str) -> None:
        self.outputs, self.flow_id = outputs, flow_id
        self.messages: list[dict[str, Any]] = []
        self.last_message_at = time.monotonic()
        self.ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="load-subscriber", daemon=True)
        self._future: Any = None

    def start(self) -> None:
        self._thread.start()
        self._future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)

    async def _listen(self) -> None:
        from gql import Client, GraphQLRequest, gql
        from gql.transport.appsync_auth import AppSyncApiKeyAuthentication
        from gql.transport.appsync_websockets import AppSyncWebsocketsTransport

        host = urlparse(self.outputs["graphqlUrl"]).netloc
        auth = AppSyncApiKeyAuthentication(host=host, api_key=self.outputs["apiKey"])
        transport = AppSyncWebsocketsTransport(url=self.outputs["realtimeUrl"], auth=auth)
        query = gql(
            "subscription($f: String) { workflowStateUpdated(flowId: $f) { taskId seq status currentStep branchId } }"
        )
        async with Client(transport=transport) as session:
            request = GraphQLRequest(query, variable_values={"f": self.flow_id})
            self.ready.set()
            async for result in session.subscribe(request):
                self.messages.append(result["workflowStateUpdated"])
                self.last_message_at = time.monotonic()

    def quiet_for(self, seconds: float) -> bool:
        return time.monotonic() - self.last_message_at >= seconds

    def stop(self) -> None:
        """Cancel the subscription and every task gql started (so none is left pending), then end the loop."""

        async def cancel_all() -> None:
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        with contextlib.suppress(BaseException):  # cancelled, as asked
            asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


class LoadRun:
    """Start `tasks` tasks of a fresh transform flow and check what the stack recorded and delivered."""

    def __init__(self, outputs: dict[str, Any], *, tasks: int, concurrency: int, steps: int, over: float = 0.0):
        self.outputs, self.tasks, self.concurrency, self.steps, self.over = outputs, tasks, concurrency, steps, over
        self.flow_id = f"load-{uuid.uuid4().hex[:8]}"
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=concurrency + 4)
        self.session.mount("http://", adapter)
        self.report = Report()
        self._errors_lock = threading.Lock()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One task-API request with the key (an operator's signature to register flows); a 5xx
        answer is counted in the report."""
        operator = method == "PUT" and path.startswith("/flows/")
        response = self.session.request(
            method,
            self.outputs["taskApiUrl"] + path,
            headers={} if operator else {"x-api-key": self.outputs["apiKey"]},
            auth=SigV4(self.outputs["awsCredentials"]) if operator else None,
            timeout=60,
            **kwargs,
        )
        if response.status_code >= 500:
            with self._errors_lock:
                self.report.server_errors[f"{method} {path.split('/')[1]} {response.status_code}"] += 1
        return response

    def _start(self, index: int) -> str | None:
        name = f"{self.flow_id}-{index}"
        for _attempt in range(5):  # a 5xx is counted; the name makes a retry safe
            began = time.monotonic()
            response = self.call("POST", "/tasks", json={"flowId": self.flow_id, "input": {"k": index}, "name": name})
            if response.status_code in (200, 201):
                self.report.start_latencies.append(time.monotonic() - began)
                return response.json()["taskId"]
            if response.status_code < 500:
                raise RuntimeError(f"start {name}: {response.status_code} {response.text}")
        return None

    def run(
        self, *, deadline_seconds: float = 600, quiet_seconds: float = 3.0, subscriber: Subscriber | None = None
    ) -> Report:
        response = self.call("PUT", f"/flows/{self.flow_id}", json=transform_flow(self.flow_id, self.steps))
        assert response.status_code in (200, 201), response.text
        subscriber = Subscriber(self.outputs, self.flow_id)
        subscriber.start()
        subscriber.ready.wait(10)
        time.sleep(0.5)  # the start message reaches the server before the first change
        began = time.monotonic()
        task_ids: list[str] = []
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = []
            for index in range(self.tasks):
                if self.over:
                    time.sleep(max(0.0, began + index * self.over / self.tasks - time.monotonic()))
                futures.append(pool.submit(self._start, index))
            task_ids = [task_id for task_id in (f.result() for f in futures) if task_id]
        self.report.started = len(task_ids)
        states = self.until_terminal(task_ids, began + deadline_seconds)
        self.report.seconds = time.monotonic() - began
        histories = self._histories(task_ids)
        expected = {(h["taskId"], h["seq"]): h for items in histories.values() for h in items}
        wait_until = time.monotonic() + 60
        while time.monotonic() < wait_until:
            seen = {(m["taskId"], m["seq"]) for m in subscriber.messages}
            if expected.keys() <= seen and subscriber.quiet_for(quiet_seconds):
                break
            time.sleep(0.2)
        subscriber.stop()
        self._count(states, histories, expected, list(subscriber.messages))
        return self.report

    def until_terminal(self, task_ids: list[str], deadline: float) -> dict[str, dict[str, Any]]:
        """Poll the tasks until every one is final or `deadline` (monotonic) passes; their last states."""
        states: dict[str, dict[str, Any]] = {}
        pending = list(task_ids)
        with ThreadPoolExecutor(max_workers=8) as pool:
            while pending and time.monotonic() < deadline:
                for task_id, state in zip(pending, pool.map(self._state, pending), strict=True):
                    states[task_id] = state
                pending = [task_id for task_id in pending if states[task_id].get("status") not in FINAL]
                if pending:
                    time.sleep(0.5)
        return states

    def _state(self, task_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/tasks/{task_id}")
        return response.json() if response.status_code == 200 else {}

    def _histories(self, task_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        def history(task_id: str) -> list[dict[str, Any]]:
            response = self.call("GET", f"/tasks/{task_id}/history")
            return response.json()["items"] if response.status_code == 200 else []

        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(zip(task_ids, pool.map(history, task_ids), strict=True))

    def _count(
        self,
        states: dict[str, dict[str, Any]],
        histories: dict[str, list[dict[str, Any]]],
        expected: dict[tuple[str, int], dict[str, Any]],
        messages: list[dict[str, Any]],
    ) -> None:
        report = self.report
        for task_id, state in states.items():
            status = state.get("status")
            if status in FINAL:
                report.statuses[status] += 1
            else:
                report.stuck += 1
            seqs = [h["seq"] for h in histories.get(task_id, [])]
            report.records += len(seqs)
            if seqs != list(range(1, len(seqs) + 1)):
                report.history_gaps += 1
            if not seqs or state.get("seq") != seqs[-1]:
                report.seq_mismatch += 1
        keys = Counter((m["taskId"], m["seq"]) for m in messages)
        report.messages = len(messages)
        report.duplicates = sum(count - 1 for count in keys.values())
        report.missing = len(expected.keys() - keys.keys())
        report.phantom = sum(
            1
            for m in messages
            if (m["taskId"], m["seq"]) not in expected or expected[(m["taskId"], m["seq"])]["status"] != m["status"]
        )
        order: dict[str, list[int]] = defaultdict(list)
        for m in messages:
            order[m["taskId"]].append(m["seq"])
        report.out_of_order_tasks = sum(1 for seqs in order.values() if seqs != sorted(seqs))


def loop_flow(flow_id: str, steps: int) -> dict[str, Any]:
    """A counter loop: `transform` then `choice`, `steps` steps in all (a `succeed` ends it)."""
    return {
        "id": flow_id,
        "startAt": "count",
        "maxSteps": steps + 10,
        "steps": {
            "count": {"type": "transform", "value": "{{ (c | default(0)) + 1 }}", "resultPath": "c", "next": "again"},
            "again": {
                "type": "choice",
                "choices": [{"path": "c", "lessThan": steps // 2, "next": "count"}],
                "default": "done",
            },
            "done": {"type": "succeed", "outputPath": "c"},
        },
    }


def measure_steps_per_second(outputs: dict[str, Any], steps: int, deadline_seconds: float = 1800) -> float:
    """Run one loop task of `steps` steps; its history records per second from start to end."""
    run = LoadRun(outputs, tasks=1, concurrency=1, steps=1)
    flow_id = run.flow_id
    assert run.call("PUT", f"/flows/{flow_id}", json=loop_flow(flow_id, steps)).status_code in (200, 201)
    began = time.monotonic()
    task_id = run.call("POST", "/tasks", json={"flowId": flow_id, "input": {}}).json()["taskId"]
    state = run.until_terminal([task_id], began + deadline_seconds)[task_id]
    elapsed = time.monotonic() - began
    if state.get("status") != "SUCCEEDED":
        raise SystemExit(f"the loop task did not succeed: {state}")
    return state["seq"] / elapsed


def throughput(outputs: dict[str, Any], steps: int, records: int = 20_000) -> None:
    """Steps/s of one task of `steps` steps, on a fresh stack and again once `records` history
    records are stored."""
    small = measure_steps_per_second(outputs, steps)
    print(f"steps/s with ~{steps:,} history records stored: {small:.1f}", flush=True)
    filler = records - 2 * steps
    print(f"filling the history table with a {filler:,}-step task ...", flush=True)
    measure_steps_per_second(outputs, filler)
    large = measure_steps_per_second(outputs, steps)
    print(f"steps/s with ~{records:,} history records stored: {large:.1f} ({large / small:.2f}x the first)")


def _own_stack(log_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    outputs_path = Path(tempfile.mkdtemp(prefix="aiwf-load-")) / "outputs.json"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "local", "--port", "0", "--outputs", str(outputs_path), "--log-level", "WARNING"),
            *("--state-dir", str(outputs_path.parent / "state")),  # not the checkout's .local/state
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not outputs_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the local stack did not start; see {log_path}")
        time.sleep(0.2)
    return process, json.loads(outputs_path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50, help="starts in flight at once")
    parser.add_argument("--steps", type=int, default=5, help="transform steps per task")
    parser.add_argument("--over", type=float, default=0.0, help="spread the starts over this many seconds")
    parser.add_argument("--deadline", type=float, default=900, help="give up waiting for tasks after this")
    parser.add_argument("--outputs", help="a running stack's outputs.json (default: start one)")
    parser.add_argument("--throughput", action="store_true", help="steps/s of one long task at 1k and 20k records")
    parser.add_argument("--small", action="store_true", help="5 tasks, then a short --throughput (the suite)")
    args = parser.parse_args(argv)
    if args.small:
        args.tasks, args.concurrency, args.steps = 5, 5, 2
    process = None
    if args.outputs:
        outputs = json.loads(Path(args.outputs).read_text())
    else:
        log_path = Path(tempfile.gettempdir()) / "aiwf-load-stack.log"
        process, outputs = _own_stack(log_path)
        print(f"local stack at {outputs['taskApiUrl']} (log: {log_path})", flush=True)
    try:
        if args.throughput and not args.small:
            throughput(outputs, args.steps if args.steps > 5 else 1000)
            return 0
        run = LoadRun(outputs, tasks=args.tasks, concurrency=args.concurrency, steps=args.steps, over=args.over)
        print(f"{args.tasks} tasks of {args.steps} transform steps, {args.concurrency} starts in flight", flush=True)
        report = run.run(deadline_seconds=args.deadline, quiet_seconds=1.0 if args.small else 3.0)
        if args.small:
            throughput(outputs, 10, records=100)
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=60)
    for line in report.lines():
        print(line)
    problems = report.problems()
    print("problems: " + (", ".join(problems) if problems else "none"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
