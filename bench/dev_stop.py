"""How long `make dev` takes to stop on Ctrl-C or SIGTERM, idle and in the middle of work.

Starts `python -m local` (the real program, a free port, outputs in a temporary folder) as
`make dev` does, waits for its outputs, then, for the busy case: starts tasks whose `http` step
waits on a slow server (their process-steps workers are busy), a `POST /tasks` with `wait` that is
still waiting for its task, and a task parked in a `poll` Wait. It then signals and times the
exit (Ctrl-C: SIGINT to the process group, as a terminal sends it; SIGTERM: to the stack's
process alone), and checks that no Lambda worker outlived the stack and that no traceback was printed.

    .venv/bin/python -m bench.dev_stop [--rounds 2] [--small]

`--small` is one round of the two busy cases, 1 s after the work started (the suite runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests.sigv4 import SigV4

ROOT = Path(__file__).resolve().parent.parent


def slow_server(seconds: float) -> ThreadingHTTPServer:
    """An external system that takes `seconds` to answer each request but those to `/fast`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.startswith("/fast"):
                time.sleep(seconds)
            body = b'{"state": "running"}'
            with contextlib.suppress(OSError):
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def make_busy(api: str, key: str, slow_url: str, operator: SigV4) -> None:
    """Tasks in flight: three `http` steps waiting on the slow server, one POST /tasks with `wait`
    waiting for one of them, one task parked in a poll's Wait."""
    headers = {"x-api-key": key}
    flows = {
        "stop-slow": {"s": {"type": "http", "url": slow_url, "resultPath": "r", "next": "d"}},
        "stop-park": {
            "s": {
                "type": "poll",
                "check": {"type": "http", "url": slow_url.replace("/job", "/fast")},
                "until": {"path": "state", "equals": "done"},
                "intervalSeconds": 600,
                "maxAttempts": 5,
                "next": "d",
            }
        },
    }
    for flow_id, steps in flows.items():
        document = {"id": flow_id, "startAt": "s", "steps": {**steps, "d": {"type": "succeed"}}}
        requests.put(f"{api}/flows/{flow_id}", json=document, auth=operator, timeout=30).raise_for_status()
    for _ in range(3):
        requests.post(f"{api}/tasks", json={"flowId": "stop-slow", "input": {}}, headers=headers, timeout=30)
    requests.post(f"{api}/tasks", json={"flowId": "stop-park", "input": {}}, headers=headers, timeout=30)

    def waiting_start() -> None:
        with contextlib.suppress(requests.RequestException):
            body = {"flowId": "stop-slow", "input": {}, "wait": 25}
            requests.post(f"{api}/tasks", json=body, headers=headers, timeout=60)

    threading.Thread(target=waiting_start, daemon=True).start()


def one_round(
    busy: bool, slow_url: str, ctrl_c: bool = True, show_log: bool = False, settle: float = 3
) -> tuple[float, int, str]:
    """(seconds from SIGINT to exit, exit code, what was not clean: a worker left, a traceback);
    a busy stack is signalled `settle` seconds after the work was started."""
    with tempfile.TemporaryDirectory(prefix="aiwf-stop-") as tmp:
        outputs = Path(tmp) / "outputs.json"
        log = open(Path(tmp) / "dev.log", "w+")  # noqa: SIM115 - read back below
        process = subprocess.Popen(
            [
                # --port 0: any free ports (the plain one and its TLS twin), which the outputs give
                *(sys.executable, "-m", "local", "--port", "0", "--outputs", str(outputs)),
                *("--state-dir", str(Path(tmp) / "state")),  # not the checkout's .local/state
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 180
            while not outputs.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the stack did not start")
                time.sleep(0.2)
            stack = json.loads(outputs.read_text())
            if busy:
                make_busy(stack["taskApiUrl"], stack["apiKey"], slow_url, SigV4(stack["awsCredentials"]))
                time.sleep(settle)  # let the work reach the workers and the Wait
            workers = children(process.pid)
            if ctrl_c:
                os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: workers get it too
            else:
                process.send_signal(signal.SIGTERM)  # `kill`: the stack alone
            started = time.monotonic()
            code = process.wait(timeout=120)
            seconds = time.monotonic() - started
            time.sleep(0.5)
            log.seek(0)
            text = log.read()
            if show_log:
                print(text[text.rfind("stopping") - 30 :])
            left = [pid for pid in workers if alive(pid)]
            problems = [f"{len(left)} worker(s) left"] if left else []
            if "Traceback" in text:
                problems.append("traceback:\n" + text[text.index("Traceback") - 200 :][:3000])
            return seconds, code, "; ".join(problems) or "clean"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--show-log", action="store_true", help="print what the stack logged from SIGINT on")
    parser.add_argument("--small", action="store_true", help="one round of the busy cases (what the suite runs)")
    args = parser.parse_args()
    server = slow_server(seconds=60)
    slow_url = f"http://127.0.0.1:{server.server_address[1]}/job"
    print("make dev: signal to exit, exit code, clean (no worker left, no traceback)")
    cases = (("idle, Ctrl-C", False, True), ("busy, Ctrl-C", True, True), ("busy, SIGTERM", True, False))
    rounds, settle = (1, 1.0) if args.small else (args.rounds, 3.0)
    for label, busy, ctrl_c in cases[1:] if args.small else cases:
        for n in range(rounds):
            seconds, code, outcome = one_round(busy, slow_url, ctrl_c, args.show_log, settle)
            print(f"  {label} #{n + 1}: {seconds:5.2f} s  exit {code}  {outcome}", flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
