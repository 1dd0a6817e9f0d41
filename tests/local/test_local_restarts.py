"""`python -m local` (what `make dev` runs) stopped, killed and started again, as a user does.

Each test runs the real program in real processes with a state folder of its own: what was stored
comes back (flows, tasks, history, payload objects, the API key), a task that was running goes on,
a task that was waiting is announced again with a new token while the old one answers 410, a
SIGKILL in the middle of writes leaves a store that loads, a second stack on a busy port says so
in one line and touches nothing of the first, a clean stop removes the outputs file, and
`--fresh` starts empty.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from tests.integration.stub_server import StubServer, start_stub
from tests.sigv4 import SigV4, operator_request

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class Dev:
    """One `python -m local` at a time on a state folder and outputs file of the test's own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.outputs_file = folder / "outputs.json"
        self.state_dir = folder / "state"
        self.process: subprocess.Popen[str] | None = None
        self.outputs: dict[str, Any] = {}

    def command(self, port: int, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "local",
            "--port",
            str(port),
            "--outputs",
            str(self.outputs_file),
            "--state-dir",
            str(self.state_dir),
            *extra,
        ]

    def start(self, *extra: str, port: int = 0) -> dict[str, Any]:
        log = open(self.folder / "log.txt", "a")  # noqa: SIM115 (the process writes it while it runs)
        self.process = subprocess.Popen(
            self.command(port, *extra), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while not self.outputs_file.exists():
            assert self.process.poll() is None, (self.folder / "log.txt").read_text()[-5000:]
            assert time.monotonic() < deadline, "the stack did not get ready"
            time.sleep(0.1)
        self.outputs = json.loads(self.outputs_file.read_text())
        return self.outputs

    def log_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first log line matching `pattern`, once the stack has written it (the outputs file
        comes before the last start-up lines, so a loaded machine may not have them yet)."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, (self.folder / "log.txt").read_text())) is None:
            assert self.process is not None and self.process.poll() is None, "the stack exited"
            assert time.monotonic() < deadline, f"no log line like {pattern!r}"
            time.sleep(0.1)
        return found

    @property
    def port(self) -> int:
        return urlparse(self.outputs["taskApiUrl"]).port or 0

    def rest(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The API key, or an operator's signature for flow registration."""
        if operator_request(method, path):
            kwargs["auth"] = SigV4(self.outputs["awsCredentials"])
            return requests.request(method, self.outputs["taskApiUrl"] + path, timeout=30, **kwargs)
        headers = {"x-api-key": self.outputs["apiKey"]}
        return requests.request(method, self.outputs["taskApiUrl"] + path, headers=headers, timeout=30, **kwargs)

    def wait_for(self, task_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.rest("GET", f"/tasks/{task_id}").json()
            if state.get("status") in statuses:
                return state
            assert time.monotonic() < deadline, state
            time.sleep(0.2)

    def signal(self, signum: int) -> int:
        assert self.process is not None
        if signum == signal.SIGKILL:
            os.killpg(self.process.pid, signal.SIGKILL)  # the stack and its Lambda workers, as a crash
        else:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def dev(tmp_path: Path) -> Any:
    running = Dev(tmp_path)
    yield running
    running.close()


@pytest.fixture
def stub() -> Any:
    server = start_stub()
    yield server
    for gate in server.gates.values():
        gate.set()
    server.server.shutdown()


def _flows(stub: StubServer, suffix: str) -> dict[str, dict[str, Any]]:
    return {
        "wait": {
            "id": f"restart-wait-{suffix}",
            "startAt": "approve",
            "steps": {
                "approve": {
                    "type": "wait_for_event",
                    "timeoutSeconds": 3600,
                    "notify": {"url": f"{stub.url}/notify/{suffix}"},
                    "resultPath": "approval",
                    "next": "done",
                },
                "done": {"type": "succeed", "outputPath": "approval"},
            },
        },
        "http": {
            "id": f"restart-http-{suffix}",
            "startAt": "call",
            "steps": {
                "call": {
                    "type": "http",
                    "url": f"{stub.url}/slow/{suffix}",
                    "timeoutSeconds": 600,  # the call hangs until the stack is killed, however long that takes
                    "resultPath": "answer",
                    "next": "done",
                },
                "done": {"type": "succeed", "outputPath": "answer"},
            },
        },
        "big": {
            "id": f"restart-big-{suffix}",
            "startAt": "done",
            "steps": {"done": {"type": "succeed", "outputPath": "input"}},
        },
    }


def _without_links(state: dict[str, Any]) -> dict[str, Any]:
    """A history state without its payload links (presigned URLs of the embedded AWS, new each time)."""
    return {key: value for key, value in state.items() if not (isinstance(value, dict) and "$ref" in value)}


def _snapshot_has(dev: Dev, task_id: str, status: str) -> bool:
    """The state folder's snapshot holds `task_id` with `status` (what a kill -9 keeps)."""
    try:
        snapshot = json.loads((dev.state_dir / "snapshot.json").read_text())
    except (OSError, ValueError):
        return False
    return any(
        item.get("taskId", {}).get("S") == task_id and item.get("status", {}).get("S") == status
        for items in snapshot["dynamodb"].values()
        for item in items
    )


def test_a_killed_stack_comes_back_with_its_data_and_its_tasks_go_on(dev: Dev, stub: StubServer):
    suffix = uuid.uuid4().hex[:8]
    flows = _flows(stub, suffix)
    outputs = dev.start("--fresh")
    ready = dev.log_line(r"ready in [\d.]+ s: (.*)")  # where start-up went, in one line:
    assert [part.rsplit(" ", 2)[0] for part in ready.group(1).split(", ")] == [
        "embedded AWS",
        "program under mocks",
        "provisioning",
        "Lambda workers",
        "servers",
        "outputs",
    ]
    for flow in flows.values():
        assert dev.rest("PUT", f"/flows/{flow['id']}", json=flow).status_code == 201
    # A task waiting for an event, one running an http step that hangs, one with a payload in S3.
    waiting = dev.rest("POST", "/tasks", json={"flowId": flows["wait"]["id"], "input": {"n": 1}}).json()["taskId"]
    old_token = stub.wait_for(f"/notify/{suffix}")[0].body["resumeToken"]
    gate = stub.hold(f"/slow/{suffix}")
    running = dev.rest("POST", "/tasks", json={"flowId": flows["http"]["id"], "input": {}}).json()["taskId"]
    stub.wait_for(f"/slow/{suffix}")
    big_input = {"text": "x" * 300_000}  # above the payload threshold: context and output go to S3
    big = dev.rest("POST", "/tasks", json={"flowId": flows["big"]["id"], "input": big_input}).json()["taskId"]
    assert dev.wait_for(big, FINAL)["status"] == "SUCCEEDED"
    history = dev.rest("GET", f"/tasks/{big}/history").json()["items"]

    # Tasks keep being created up to the kill: the store must load whatever moment the kill hits.
    created: list[tuple[float, str]] = []
    stop_writing = threading.Event()

    def keep_writing() -> None:
        while not stop_writing.is_set():
            with_name = {"flowId": "hello", "input": {"name": "load"}}
            try:
                answer = dev.rest("POST", "/tasks", json=with_name)
            except requests.RequestException:
                return  # the stack is gone
            if answer.status_code == 201:
                created.append((time.monotonic(), answer.json()["taskId"]))

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    deadline = time.monotonic() + 60
    while not (_snapshot_has(dev, big, "SUCCEEDED") and len(created) >= 20):
        assert time.monotonic() < deadline, (
            f"{len(created)} tasks, snapshot of {big}: {_snapshot_has(dev, big, 'SUCCEEDED')}"
        )
        time.sleep(0.1)

    # A second stack on the same port says so in one line and leaves the first one's files alone.
    outputs_before = dev.outputs_file.read_bytes()
    busy = subprocess.run(dev.command(dev.port), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert busy.returncode != 0
    assert busy.stderr.strip().splitlines()[-1] == (
        f"port {dev.port} is in use (another make dev?): PORT={dev.port + 10} make dev"
    ), busy.stderr
    assert "Traceback" not in busy.stderr + busy.stdout
    assert dev.outputs_file.read_bytes() == outputs_before
    # On another port, the same state folder: one line too, and nothing of the first one touched.
    same_state = subprocess.run(dev.command(0), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert same_state.returncode != 0
    holder = dev.process.pid if dev.process else None
    assert same_state.stderr.strip().splitlines()[-1] == (
        f"{dev.state_dir} is in use by another local stack (pid {holder}): stop it first"
    ), same_state.stderr
    assert dev.outputs_file.read_bytes() == outputs_before
    assert (dev.state_dir / "lock").read_text().strip() == str(holder)

    killed_at = time.monotonic()
    assert dev.signal(signal.SIGKILL) == -signal.SIGKILL
    stop_writing.set()
    writer.join(timeout=30)
    gate.set()  # the hung call is over; the restarted step's call is answered at once
    dev.outputs_file.unlink()  # a killed stack cannot remove it (a clean stop does: below)

    again = dev.start()
    assert again["apiKey"] == outputs["apiKey"] and again["stateMachineArn"] == outputs["stateMachineArn"]
    assert (again["userPoolId"], again["userPoolClientId"]) == (outputs["userPoolId"], outputs["userPoolClientId"])
    listed = {flow["flowId"] for flow in dev.rest("GET", "/flows", params={"limit": 100}).json()["items"]}
    assert {flow["id"] for flow in flows.values()} <= listed
    kept = dev.rest("GET", f"/tasks/{big}").json()
    assert kept["status"] == "SUCCEEDED" and kept["output"] == big_input
    kept_history = dev.rest("GET", f"/tasks/{big}/history").json()["items"]
    assert [_without_links(state) for state in kept_history] == [_without_links(state) for state in history]
    link = kept_history[-1]["output"]["$ref"]  # a large output is a link to the payload object, kept too
    assert requests.get(link, timeout=30).json() == big_input
    # What the store had seconds before the kill is there (it saves every second that changes).
    for answered_at, task_id in created:
        if answered_at < killed_at - 5:
            assert dev.rest("GET", f"/tasks/{task_id}").status_code == 200, task_id

    # The running task went on from its step; the waiting one was announced again with a new token.
    went_on = dev.wait_for(running, FINAL)
    assert went_on["status"] == "SUCCEEDED" and went_on["output"] == {"ok": True}, went_on
    first, again = (n.body for n in stub.wait_for(f"/notify/{suffix}", count=2, timeout=60)[:2])
    new_token = again["resumeToken"]
    assert new_token != old_token and again["waitId"] == first["waitId"]  # the same wait, a new token
    assert dev.rest("GET", f"/tasks/{waiting}").json()["status"] == "WAITING"
    old = dev.rest("PUT", f"/tasks/{waiting}", json={"resumeToken": old_token, "status": "SUCCEEDED"})
    assert old.status_code == 410 and old.json()["error"]["code"] == "TOKEN_REPLACED"
    assert "restarted" in old.json()["error"]["message"]
    old = requests.post(again["callbackUrl"], json={"resumeToken": old_token, "status": "SUCCEEDED"}, timeout=30)
    assert old.status_code == 410 and old.json()["error"]["code"] == "TOKEN_REPLACED"
    resumed = requests.post(  # the callbackUrl, with the token alone
        again["callbackUrl"], json={"resumeToken": new_token, "status": "SUCCEEDED", "output": {"ok": 1}}, timeout=30
    )
    assert resumed.status_code == 202, resumed.text
    assert dev.wait_for(waiting, FINAL)["output"] == {"ok": 1}

    # A clean stop removes the outputs (nothing to mistake for a running stack); --fresh starts empty.
    assert dev.signal(signal.SIGTERM) == 0
    assert not dev.outputs_file.exists()
    fresh = dev.start("--fresh")
    assert fresh["apiKey"] != outputs["apiKey"]
    assert dev.rest("GET", f"/tasks/{big}").status_code == 404
    assert dev.rest("GET", f"/flows/{flows['wait']['id']}").status_code == 404
    assert dev.signal(signal.SIGTERM) == 0
