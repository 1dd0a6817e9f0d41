"""The two engines side by side: $ per 1,000 tasks and local wall time, for the reference flows.

Runs each reference flow of bench/transitions.py (10 inline steps; wait + poll + 4-branch
parallel; 2 inline steps + 4-branch parallel) as real tasks on the local stack, once with the flow
on Step Functions and once with `engine: durable`, one task at a time, and measures per task:
- Step Functions: state transitions (from the execution history) and the orchestrator functions'
  Lambda requests and durations;
- durable: durable operations and the data they checkpointed (from the durable execution's
  history), and the durable function's Lambda requests and durations;
- the wall time from POST /tasks to the final state read from GET /tasks/{id} (the wait step is
  resumed as soon as its notify arrives, so it adds only the local round trip).

Prices (us-east-1 list prices as published on 2026-12-02; Lambda durable functions as published
at their launch, December 2025):
- Step Functions Standard: $0.025 per 1,000 state transitions (bench/transitions.py owns it);
- Lambda: $0.20 per 1M requests, $0.0000166667 per GB-second (x86), both engines;
- Lambda durable functions: $8.00 per 1M durable operations, $0.25 per GB of data written
  (checkpointed); retention ($0.15 per GB-month, 14 days by default) is left out: under a cent
  per 1,000 tasks of these sizes.
Durations are the local workers' (each Lambda call crosses local HTTP hops and a pipe), so the
GB-second part is an upper bound for both engines; memory is the stage's (dev: 512 MB).
Task API calls are the same for both engines and are not counted.

    .venv/bin/python -m bench.engines [--small]

`--small` runs one task per flow and engine instead of three (the suite runs it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from bench.transitions import (  # noqa: E402
    PRICE_PER_INVOCATION,
    PRICE_PER_TRANSITION,
    counts,
    inline_flow,
    mixed_flow,
    parallel_flow,
)
from local import lambda_invoke  # noqa: E402
from local.stack import LocalStack  # noqa: E402
from tests.integration.stub_server import start_stub  # noqa: E402
from tests.sigv4 import SigV4  # noqa: E402

PRICES_AS_OF = "2026-12-02"
PRICE_PER_GB_SECOND = 0.0000166667
PRICE_PER_DURABLE_OPERATION = 8.00 / 1_000_000
PRICE_PER_DURABLE_GB_WRITTEN = 0.25
RUNS = 3
FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
ORCHESTRATOR_HANDLERS = {
    "stepfunctions": ("aiwf.handlers.orchestrator.process", "aiwf.handlers.orchestrator.finalize"),
    "durable": ("aiwf.handlers.durable.handler",),
}


@dataclass
class Invocations:
    """Every Lambda invocation the embedded AWS dispatches, timed, by function name."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, dispatcher: Any) -> Any:
        def timed(config: Any, event: str) -> Any:
            started = time.perf_counter()
            try:
                return dispatcher(config, event)
            finally:
                with self.lock:
                    self.seconds[config.name].append(time.perf_counter() - started)

        return timed

    def take(self, names: set[str]) -> list[float]:
        with self.lock:
            taken = [s for name in names for s in self.seconds.pop(name, [])]
        return taken


@dataclass
class Run:
    wall: float
    requests: int
    gb_seconds: float
    transitions: int = 0
    operations: int = 0
    bytes_written: int = 0

    def dollars(self) -> float:
        return (
            self.requests * PRICE_PER_INVOCATION
            + self.gb_seconds * PRICE_PER_GB_SECOND
            + self.transitions * PRICE_PER_TRANSITION
            + self.operations * PRICE_PER_DURABLE_OPERATION
            + self.bytes_written / 1e9 * PRICE_PER_DURABLE_GB_WRITTEN
        )


def durable_usage(lam: Any, execution_arn: str) -> tuple[int, int]:
    """(durable operations, bytes checkpointed) of one durable execution, from its history."""
    events: list[dict[str, Any]] = []
    marker = None
    while True:
        page = lam.get_durable_execution_history(
            DurableExecutionArn=execution_arn, IncludeExecutionData=True, **({"Marker": marker} if marker else {})
        )
        events += page.get("Events", [])
        marker = page.get("NextMarker")
        if not marker:
            break
    operations = {event["Id"] for event in events if event.get("Id") and event["EventType"] != "ExecutionStarted"}
    written = 0
    for event in events:
        for key, details in event.items():
            if key.endswith("Details") and isinstance(details, dict):
                for value in details.values():
                    if isinstance(value, dict) and isinstance(value.get("Payload"), str):
                        written += len(value["Payload"].encode())
    return len(operations), written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="one task per flow and engine (what the suite runs)")
    runs = 1 if parser.parse_args(argv).small else RUNS
    stub = start_stub()
    invocations = Invocations()
    with LocalStack(stage="dev", port=0) as stack:
        lambda_invoke.install_lambda_dispatcher(invocations.wrap(stack.aws.runtime.invoke))
        api, headers = stack.outputs["taskApiUrl"], {"x-api-key": stack.outputs["apiKey"]}
        operator = SigV4(stack.outputs["awsCredentials"])
        sfn, lam, ddb = stack.client("stepfunctions"), stack.client("lambda"), stack.client("dynamodb")
        tasks_table = next(name for name in ddb.list_tables()["TableNames"] if name.endswith("-tasks"))
        functions = lam.list_functions()["Functions"]
        memory_gb = {f["FunctionName"]: f["MemorySize"] / 1024 for f in functions}
        names = {
            engine: {f["FunctionName"] for f in functions if f["Handler"] in handlers}
            for engine, handlers in ORCHESTRATOR_HANDLERS.items()
        }

        def execution_arn(task_id: str) -> str:
            item = ddb.get_item(TableName=tasks_table, Key={"taskId": {"S": task_id}})["Item"]
            return item["executionArn"]["S"]

        def run(document: dict[str, Any], notify_path: str | None, engine: str) -> Run:
            flow_id = f"bench-{engine}-{uuid.uuid4().hex[:8]}"
            body = {**document, "id": flow_id, **({"engine": "durable"} if engine == "durable" else {})}
            requests.put(f"{api}/flows/{flow_id}", json=body, auth=operator, timeout=30).raise_for_status()
            invocations.take(names[engine])
            started = time.perf_counter()
            response = requests.post(f"{api}/tasks", json={"flowId": flow_id, "input": {"n": 1}}, headers=headers)
            response.raise_for_status()
            task_id = response.json()["taskId"]
            if notify_path is not None:
                token = stub.wait_for(notify_path, timeout=60)[0].body["resumeToken"]
                resume = {"resumeToken": token, "status": "SUCCEEDED"}
                requests.put(f"{api}/tasks/{task_id}", json=resume, headers=headers, timeout=30).raise_for_status()
            while (state := requests.get(f"{api}/tasks/{task_id}", headers=headers, timeout=30).json())[
                "status"
            ] not in FINAL:
                time.sleep(0.02)
            wall = time.perf_counter() - started
            if state["status"] != "SUCCEEDED":
                raise RuntimeError(f"{engine} task {task_id} ended {state['status']}: {state['error']}")
            arn = execution_arn(task_id)
            time.sleep(0.5)  # the execution ends just after the task record: let its last calls land
            calls = [(name, s) for name in names[engine] for s in invocations.seconds.get(name, [])]
            invocations.take(names[engine])
            gb_seconds = sum(memory_gb[name] * seconds for name, seconds in calls)
            measured = Run(wall=wall, requests=len(calls), gb_seconds=gb_seconds)
            if engine == "durable":
                measured.operations, measured.bytes_written = durable_usage(lam, arn)
            else:
                measured.transitions = counts(sfn, arn)[0]
            return measured

        def mixed() -> tuple[dict[str, Any], str]:
            notify_path, job_path = f"/notify/{uuid.uuid4().hex}", f"/job/{uuid.uuid4().hex}"
            stub.reply(job_path, (200, {"state": "running"}), (200, {"state": "done"}))
            return mixed_flow(stub.url + notify_path, stub.url + job_path), notify_path

        references = {
            "10-step inline": lambda: (inline_flow(), None),
            "wait+poll+4-branch parallel": mixed,
            "2 inline + 4-branch parallel": lambda: (parallel_flow(), None),
        }
        results: dict[tuple[str, str], list[Run]] = {}
        for label, make in references.items():
            for engine in ORCHESTRATOR_HANDLERS:
                results[(label, engine)] = [run(*make(), engine) for _ in range(runs)]

    stub.server.shutdown()
    print(f"prices as of {PRICES_AS_OF} (us-east-1); medians of {runs} tasks each; durations are local (upper bound)")
    print(
        f"{'flow':<30} {'engine':<13} {'$ / 1,000 tasks':>15} {'transitions':>11} {'durable ops':>11} "
        f"{'KB written':>10} {'λ requests':>10} {'λ GB-s':>8} {'local wall':>10}"
    )
    for (label, engine), runs in results.items():

        def median(attribute: str, runs: list[Run] = runs) -> float:
            return statistics.median(getattr(r, attribute) for r in runs)

        dollars = statistics.median(1000 * r.dollars() for r in runs)
        print(
            f"{label:<30} {engine:<13} {dollars:>15.4f} {median('transitions'):>11.0f} {median('operations'):>11.0f} "
            f"{median('bytes_written') / 1024:>10.1f} {median('requests'):>10.0f} {median('gb_seconds'):>8.3f} "
            f"{median('wall') * 1000:>8.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
