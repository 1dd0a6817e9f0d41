"""A Workflow State API outage on the local stack: are state changes lost, and how fast do they come back?

    .venv/bin/python -m bench.publisher_outage [--seconds 60] [--every 2] [--without-replayer] [--small]

Starts its own local stack, subscribes one real AppSync client (gql, filtered by the flow),
then makes the API unreachable for the functions that publish (`state-publisher` and
`state-replayer` get a `GRAPHQL_URL` on a closed port) for `--seconds`, starting a `hello` task
every `--every` seconds meanwhile. The stream mapping retries each batch 5 times (~1.85 s of
backoff locally) and dead-letters it; the replayer fails too and backs off (locally 1 s doubling
to 8 s, in the cloud 30 s doubling to 15 min). Then the URL is restored and the bench waits until
the subscriber has every history record, or 120 s.

Prints one line: outage length, tasks, history records, dead-lettered batches, messages received,
duplicates (dropped by `seq`), missing (history records never received), phantom (received,
in no history record) and the seconds from the API's return to the last missing state's arrival.
`--without-replayer` stops the on-failure queue's poller first: the behaviour before the replayer.
`--small` is a 3 s outage with a task every second (the suite runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import yaml

from tests.sigv4 import SigV4

REPO_ROOT = Path(__file__).resolve().parent.parent
PUBLISHERS = ("state-publisher", "state-replayer")
LOCAL_BACKOFF = {"REPLAY_BACKOFF_SECONDS": "1", "REPLAY_BACKOFF_MAX_SECONDS": "8"}
SUBSCRIPTION = "subscription($f: String) { workflowStateUpdated(flowId: $f) { taskId branchId seq status } }"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rest(outputs: dict[str, Any], method: str, path: str, **kwargs: Any) -> requests.Response:
    if method == "PUT" and path.startswith("/flows/"):  # an operator's: signed
        kwargs["auth"] = SigV4(outputs["awsCredentials"])
        return requests.request(method, outputs["taskApiUrl"] + path, timeout=30, **kwargs)
    headers = {"x-api-key": outputs["apiKey"]}
    return requests.request(method, outputs["taskApiUrl"] + path, headers=headers, timeout=30, **kwargs)


def _set_url(lam: Any, original: dict[str, dict[str, str]], url: str | None) -> None:
    for name, variables in original.items():
        extra = LOCAL_BACKOFF if name.endswith("replayer") else {}
        changed = {**variables, **extra, **({"GRAPHQL_URL": url} if url else {})}
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": changed})


async def scenario(stack: Any, seconds: float, every: float) -> dict[str, Any]:
    from gql import Client, GraphQLRequest, gql
    from gql.transport.appsync_auth import AppSyncApiKeyAuthentication
    from gql.transport.appsync_websockets import AppSyncWebsocketsTransport

    from local import dynamodb_event_source

    outputs = stack.outputs
    document = yaml.safe_load((REPO_ROOT / "flows" / "hello.yaml").read_text())
    document["id"] = flow_id = f"outage-{uuid.uuid4().hex[:6]}"
    _rest(outputs, "PUT", f"/flows/{flow_id}", json=document).raise_for_status()
    lam = stack.client("lambda")
    names = [f"aiwf-{stack.stage}-{name}" for name in PUBLISHERS]
    original = {n: lam.get_function_configuration(FunctionName=n)["Environment"]["Variables"] for n in names}
    _set_url(lam, original, None)
    received: list[tuple[dict[str, Any], float]] = []
    auth = AppSyncApiKeyAuthentication(host=urlparse(outputs["graphqlUrl"]).netloc, api_key=outputs["apiKey"])
    transport = AppSyncWebsocketsTransport(url=outputs["realtimeUrl"], auth=auth)
    task_ids: list[str] = []
    before = sum(len(d.failed_batches) for d in dynamodb_event_source.stream_deliveries().values())
    async with Client(transport=transport) as session:

        async def listen() -> None:
            async for result in session.subscribe(GraphQLRequest(gql(SUBSCRIPTION), variable_values={"f": flow_id})):
                received.append((result["workflowStateUpdated"], time.monotonic()))

        listener = asyncio.create_task(listen())
        while stack.appsync.hub.count() < 1:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(_set_url, lam, original, f"http://127.0.0.1:{_closed_port()}/graphql")
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            body = {"flowId": flow_id, "input": {"name": f"n{len(task_ids)}"}}
            answer = await asyncio.to_thread(_rest, outputs, "POST", "/tasks", json=body)
            task_ids.append(answer.json()["taskId"])
            await asyncio.sleep(every)
        outage = time.monotonic() - started
        await asyncio.to_thread(_set_url, lam, original, None)
        restored = time.monotonic()
        expected: set[tuple[str, Any, int]] = set()
        for task_id in task_ids:  # every task has ended long before: hello is three inline steps
            items = (await asyncio.to_thread(_rest, outputs, "GET", f"/tasks/{task_id}/history")).json()["items"]
            expected |= {(item["taskId"], item.get("branchId"), item["seq"]) for item in items}
        while time.monotonic() - restored < 120:
            if expected <= {(s["taskId"], s["branchId"], s["seq"]) for s, _ in received}:
                break
            await asyncio.sleep(0.2)
        listener.cancel()
    got = {(s["taskId"], s["branchId"], s["seq"]): at for s, at in reversed(received)}  # first arrival
    missing = expected - set(got)
    late = [at for key, at in got.items() if at > restored]
    return {
        "outage": outage,
        "tasks": len(task_ids),
        "history": len(expected),
        "dead_lettered": sum(len(d.failed_batches) for d in dynamodb_event_source.stream_deliveries().values())
        - before,
        "received": len(received),
        "duplicates": len(received) - len(got),
        "missing": len(missing),
        "phantom": len(set(got) - expected),
        "recovered_after": (max(late) - restored) if late and not missing else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=float, default=2)
    parser.add_argument("--without-replayer", action="store_true")
    parser.add_argument("--small", action="store_true", help="a 3 s outage, a task every second (what the suite runs)")
    args = parser.parse_args()
    if args.small:
        args.seconds, args.every = 3, 1
    logging.basicConfig(level=logging.ERROR)
    from local import sqs_event_source
    from local.stack import LocalStack

    with LocalStack(stage="dev", port=0) as stack:
        if args.without_replayer:
            sqs_event_source.stop_all()
        loop = asyncio.new_event_loop()
        try:
            r = loop.run_until_complete(scenario(stack, args.seconds, args.every))
        finally:
            loop.close()
    recovered = "never" if r["recovered_after"] is None else f"{r['recovered_after']:.1f} s"
    print(
        f"outage {r['outage']:.0f} s{' (no replayer)' if args.without_replayer else ''}: tasks {r['tasks']} "
        f"history records {r['history']} dead-lettered batches {r['dead_lettered']} received {r['received']} "
        f"duplicates {r['duplicates']} missing {r['missing']} phantom {r['phantom']} "
        f"all delivered {recovered} after the API returned"
    )


if __name__ == "__main__":
    main()
