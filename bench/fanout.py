"""Fan-out latency of the Workflow State API on the local stack: a committed state change ->
delivered to each of N real AppSync clients (gql over the real-time WebSocket protocol).

    .venv/bin/python -m bench.fanout [--changes 40] [--subscribers 1 10 100] [--small]

One line per N: `subscribers: N p50: X ms p95: Y ms p99: Z ms`, over N x changes deliveries.
`--small` is 5 changes to 2 subscribers (the suite runs it).

What is timed: from the commit of a new `seq` (the instant the embedded DynamoDB applies the
conditional write that `TaskRepository.save`, the code path every Lambda uses, sends; observed in
local.dynamodb_event_source) to the moment each subscriber's gql client yields that state. In between: the
DynamoDB stream (delivered asynchronously), the publisher Lambda (a warm worker process) signing
the mutation with SigV4, the AppSync emulator executing it and its NONE resolver's JS, and the
fan-out. Subscribers run in separate processes on uvloop, as the server does (so they do not
share the server's interpreter, and spend less of the two cores they share with it), and so does
the writer, as the Lambdas that write are (its boto3 client's work would otherwise hold the
server's GIL right after each commit); timestamps are wall-clock on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS_PER_PROCESS = 25
GAP_SECONDS = 0.05  # between changes, so each one is timed on its own rather than queued
SMALL_SUBSCRIBERS, SMALL_CHANGES = [2], 5  # --small: the suite runs it, to see the bench still works
SMALL_HELP = "5 changes to 2 subscribers (what the suite runs)"


# -- subscriber processes ----------------------------------------------------------------------------


async def _subscribers(config: dict[str, Any]) -> None:
    from gql import Client, GraphQLRequest, gql
    from gql.transport.appsync_auth import AppSyncApiKeyAuthentication
    from gql.transport.appsync_websockets import AppSyncWebsocketsTransport

    query = gql("subscription($t: ID) { workflowStateUpdated(taskId: $t) { taskId branchId seq status } }")
    expected = set(config["seqs"])

    async def one(index: int) -> list[tuple[int, float]]:
        auth = AppSyncApiKeyAuthentication(host=config["host"], api_key=config["apiKey"])
        transport = AppSyncWebsocketsTransport(url=config["realtimeUrl"], auth=auth)
        seen: list[tuple[int, float]] = []
        missing = set(expected)
        highest: dict[tuple[str, str | None], int] = {}  # delivery is at least once: drop seq <= highest
        async with Client(transport=transport) as session:
            request = GraphQLRequest(query, variable_values={"t": config["taskId"]})
            async for result in session.subscribe(request):
                state = result["workflowStateUpdated"]
                key, seq = (state["taskId"], state["branchId"]), state["seq"]
                if seq <= highest.get(key, 0):
                    continue
                highest[key] = seq
                seen.append((seq, time.time()))
                missing.discard(seq)
                if not missing:
                    return seen
        return seen

    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(config["count"]))), config["timeout"])
    print(json.dumps([r for result in results for r in result]), flush=True)


def subscriber_main() -> None:
    """The clients run on uvloop: they share the machine's cores with the server, and a gql client
    on uvloop spends about half the CPU per message that it does on asyncio's default loop."""
    import uvloop

    uvloop.run(_subscribers(json.loads(sys.stdin.readline())))


# -- the writer process ------------------------------------------------------------------------------


def writer_main() -> None:
    """Create the task, then commit one change per line read (the bench paces them): the same
    repository code as the Lambdas, from a process of its own like theirs."""
    from aiwf.clock import now_iso
    from aiwf.repository import Task, TaskRepository

    task_id = sys.stdin.readline().strip()
    repo = TaskRepository()
    now = now_iso()
    task = Task(task_id, "bench", 1, "RUNNING", 1, now, now, context={})
    assert repo.create(task)
    print("created", flush=True)
    for line in sys.stdin:
        if line.strip() != "save":
            break
        task = repo.save(task, current_step=f"step-{task.seq + 1}")
        print(task.seq, flush=True)


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "lambdas")])}


# -- the bench ---------------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def start_subscribers(outputs: dict[str, Any], task_id: str, n: int, seqs: list[int]) -> list[subprocess.Popen]:
    """N gql clients subscribed to `task_id`, in processes of their own; each ends once it has seen
    every seq in `seqs` and prints (seq, receipt time) pairs."""
    procs = []
    remaining = n
    while remaining:
        count = min(SUBSCRIBERS_PER_PROCESS, remaining)
        remaining -= count
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fanout", "--subscriber"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        config = {
            "host": urlparse(outputs["graphqlUrl"]).netloc,
            "apiKey": outputs["apiKey"],
            "realtimeUrl": outputs["realtimeUrl"],
            "taskId": task_id,
            "count": count,
            "seqs": seqs,
            "timeout": 120,
        }
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(config) + "\n")
        proc.stdin.flush()
        procs.append(proc)
    return procs


def wait_subscribed(count: Any, n: int) -> None:
    """Until `count()` (subscriptions the server holds) reaches n."""
    deadline = time.monotonic() + 60
    while count() < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count()} of {n} subscriptions registered")
        time.sleep(0.02)


def latencies(procs: list[subprocess.Popen], sent: dict[int, float], n: int, changes: int) -> list[float]:
    """Receipt minus `sent[seq]` for every delivery, in ms; all N x changes must have arrived."""
    measured: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=180)
        for seq, received in json.loads(out.strip().splitlines()[-1]):
            if seq in sent:
                measured.append((received - sent[seq]) * 1000)
    if len(measured) != n * changes:
        raise RuntimeError(f"{len(measured)} deliveries measured, expected {n * changes}")
    return measured


def report(n: int, measured: list[float], label: str = "") -> None:
    p50, p95, p99 = (_percentile(measured, f) for f in (0.50, 0.95, 0.99))
    print(f"{label}subscribers: {n} p50: {p50:.1f} ms p95: {p95:.1f} ms p99: {p99:.1f} ms", flush=True)


def measure(stack: Any, n: int, changes: int) -> list[float]:
    from local import dynamodb_event_source

    task_id = f"bench-{uuid.uuid4().hex[:10]}"
    seqs = list(range(2, 2 + changes))
    hub = stack.appsync.hub
    base = hub.count()
    procs = start_subscribers(stack.outputs, task_id, n, seqs)
    wait_subscribed(lambda: hub.count() - base, n)

    writer = subprocess.Popen(
        [sys.executable, "-m", "bench.fanout", "--writer"],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    assert writer.stdin is not None and writer.stdout is not None
    committed: dict[int, float] = {}

    def on_commit(table: str, record: dict[str, Any]) -> None:
        image = record["dynamodb"].get("NewImage") or {}
        if table.endswith("-tasks") and image.get("taskId", {}).get("S") == task_id:
            committed.setdefault(int(image["seq"]["N"]), time.time())

    dynamodb_event_source.commit_observers.append(on_commit)
    try:
        writer.stdin.write(task_id + "\n")
        writer.stdin.flush()
        if writer.stdout.readline().strip() != "created":
            raise RuntimeError("the writer process did not create the task")
        time.sleep(0.5)  # the create's own publication goes out before timing starts
        for _ in seqs:
            writer.stdin.write("save\n")
            writer.stdin.flush()
            writer.stdout.readline()
            time.sleep(GAP_SECONDS)
    finally:
        dynamodb_event_source.commit_observers.remove(on_commit)
        writer.communicate(timeout=30)
    return latencies(procs, {seq: committed[seq] for seq in seqs if seq in committed}, n, changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--changes", type=int, default=40, help="state changes timed per N")
    parser.add_argument("--subscriber", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--small", action="store_true", help=SMALL_HELP)
    args = parser.parse_args(argv)
    if args.small:
        args.subscribers, args.changes = SMALL_SUBSCRIBERS, SMALL_CHANGES
    if args.subscriber:
        subscriber_main()
        return 0
    if args.writer:
        writer_main()
        return 0
    logging.basicConfig(level=logging.WARNING)
    sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "lambdas")]
    from infra.config import StageConfig
    from infra.state_access import table_environment
    from local.stack import LocalStack

    with LocalStack(stage="dev", port=0) as stack:
        # The bench writes as the Lambdas do: the same repository code, against the embedded AWS.
        os.environ.update({"AWS_ENDPOINT_URL": stack.endpoint_url, **table_environment(StageConfig(stage=stack.stage))})
        measure(stack, 1, 5)  # warm-up: cold starts of the publisher's worker, first connections
        for n in args.subscribers:
            report(n, measure(stack, n, args.changes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
