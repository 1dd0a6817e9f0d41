"""The real program on the local stack: the session's one stack (tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from local.stack import LocalStack
from tests.integration.stub_server import StubServer, start_stub
from tests.sigv4 import SigV4, operator_request

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TaskApi:
    """A thin client for tests: base URL, API key, and a helper that waits for a final status.
    Operator operations (flow registration) are signed with the stack's `awsCredentials` instead."""

    url: str
    api_key: str
    session: requests.Session
    operator: SigV4 | None = None

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if self.operator is not None and operator_request(method, path) and "auth" not in kwargs:
            kwargs["auth"] = self.operator
            headers = kwargs.pop("headers", {})
        else:
            headers = {"x-api-key": self.api_key, **kwargs.pop("headers", {})}
        return self.session.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def wait_for(self, task_id: str, done: Callable[[dict], bool] | None = None, timeout: float = 30) -> dict:
        finished = done or (lambda state: state["status"] in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"))
        deadline = time.monotonic() + timeout
        while True:
            state = self.call("GET", f"/tasks/{task_id}").json()
            if finished(state) or time.monotonic() > deadline:
                return state
            time.sleep(0.05)


@pytest.fixture(scope="package")
def stack(program_stack: LocalStack) -> LocalStack:
    """The session's stack of the real program (tests/conftest.py), shared with tests/e2e."""
    return program_stack


@pytest.fixture(scope="package")
def api(stack: LocalStack) -> TaskApi:
    return TaskApi(
        url=stack.outputs["taskApiUrl"],
        api_key=stack.outputs["apiKey"],
        session=requests.Session(),
        operator=SigV4(stack.outputs["awsCredentials"]),
    )


@pytest.fixture(scope="package")
def stub() -> Iterator[StubServer]:
    server = start_stub()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def aiwf(stack, tmp_path_factory):
    """Run bin/aiwf as a user does, in a subprocess, against this package's stack."""
    outputs = tmp_path_factory.mktemp("cli") / "outputs.json"
    outputs.write_text(json.dumps(stack.outputs))

    def run(*args: str, check_code: int | None = 0) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(REPO_ROOT / "bin" / "aiwf"), "--outputs", str(outputs), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
        )
        if check_code is not None:
            assert result.returncode == check_code, result.stdout + result.stderr
        return result

    return run
