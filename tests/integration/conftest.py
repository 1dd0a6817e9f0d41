"""The real program on the local stack: the session's one stack (tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from local.stack import LocalStack
from tests.integration.stub_server import StubServer, start_stub


@dataclass
class TaskApi:
    """A thin client for tests: base URL, API key, and a helper that waits for a final status."""

    url: str
    api_key: str
    session: requests.Session

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
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
    return TaskApi(url=stack.outputs["taskApiUrl"], api_key=stack.outputs["apiKey"], session=requests.Session())


@pytest.fixture(scope="package")
def stub() -> Iterator[StubServer]:
    server = start_stub()
    yield server
    server.server.shutdown()
