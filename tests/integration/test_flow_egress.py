"""The egress policy on the local stack: a flow reaches its loopback stub, never the embedded AWS,
the stack's own API or the metadata address, whatever step makes the call."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


def _run(api, steps: dict, start: str) -> dict:
    flow_id = f"egress-{uuid.uuid4().hex[:8]}"
    registered = api.call("PUT", f"/flows/{flow_id}", json={"id": flow_id, "startAt": start, "steps": steps})
    assert registered.status_code == 201, registered.text
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": {}})
    assert started.status_code == 201, started.text
    return api.wait_for(started.json()["taskId"], timeout=30)


def _http_flow(url: str, method: str = "GET", body: object = None) -> dict:
    call = {"type": "http", "method": method, "url": url, "resultPath": "answer", "next": "done"}
    if body is not None:
        call["body"] = body
    return {"call": call, "done": {"type": "succeed", "outputPath": "answer"}}


def _denied(state: dict, step: str) -> dict:
    assert state["status"] == "FAILED", state
    error = state["error"]
    assert error["errorName"] == "EgressDenied", error
    assert error["stepId"] == step and error["retryable"] is False
    return error


def _embedded_aws_urls(stack) -> list[str]:
    port = urlsplit(stack.endpoint_url).port
    return [stack.endpoint_url + "/", f"http://localhost:{port}/", f"http://127.0.0.2:{port}/moto-api/"]


def test_an_http_step_at_a_loopback_stub_still_succeeds(api, stub):
    url = stub.reply(f"/egress/{uuid.uuid4().hex}", (200, {"reached": True}))

    state = _run(api, _http_flow(url), "call")

    assert state["status"] == "SUCCEEDED", state
    assert state["output"] == {"reached": True}


def test_an_http_step_cannot_reach_the_embedded_aws(api, stack):
    """What the probe did: Scan the tasks table through the embedded AWS with an http step."""
    scan = {"TableName": "aiwf-dev-tasks"}
    for url in _embedded_aws_urls(stack):
        steps = _http_flow(url, method="POST", body=scan)
        steps["call"]["headers"] = {
            "X-Amz-Target": "DynamoDB_20120810.Scan",
            "Content-Type": "application/x-amz-json-1.0",
        }
        error = _denied(_run(api, steps, "call"), "call")
        assert "AWS endpoint" in error["errorMessage"], error
        assert "Error" not in error["errorMessage"].replace("EgressDenied", "")


def test_an_http_step_cannot_reach_the_metadata_address(api):
    error = _denied(_run(api, _http_flow(METADATA_URL), "call"), "call")
    assert "169.254.169.254" in error["errorMessage"] and "metadata" in error["errorMessage"]
    assert error["errorDetails"]["url"] == METADATA_URL


def test_an_http_step_cannot_call_the_stacks_own_api(api, stack):
    """A flow must not start tasks (or read them) through the API that runs it."""
    error = _denied(_run(api, _http_flow(stack.outputs["taskApiUrl"] + "/tasks"), "call"), "call")
    assert "denyHosts" in error["errorMessage"], error


@pytest.mark.parametrize("target", ["embedded-aws", "metadata"])
def test_a_poll_check_is_held_to_the_same_policy(api, stack, target):
    url = _embedded_aws_urls(stack)[0] if target == "embedded-aws" else METADATA_URL
    steps = {
        "report": {
            "type": "poll",
            "check": {"type": "http", "url": url},
            "until": {"path": "state", "equals": "done"},
            "intervalSeconds": 1,
            "maxAttempts": 2,
            "resultPath": "report",
            "next": "done",
        },
        "done": {"type": "succeed"},
    }
    _denied(_run(api, steps, "report"), "report")


def test_a_notify_url_is_held_to_the_same_policy(api, stack, stub):
    """The resume token must never be posted to the embedded AWS (or anywhere the policy refuses)."""
    steps = {
        "approve": {
            "type": "wait_for_event",
            "timeoutSeconds": 30,
            "notify": {"url": _embedded_aws_urls(stack)[0]},
            "resultPath": "approval",
            "next": "done",
        },
        "done": {"type": "succeed"},
    }
    state = _run(api, steps, "approve")
    assert state["status"] == "FAILED", state
    assert state["error"]["errorName"] == "EgressDenied", state["error"]
    assert state["error"]["stepId"] == "approve"


@pytest.fixture
def redirector() -> Iterator[str]:
    """A loopback server that answers every request with a redirect to `/to?<location>`'s location."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", self.path.split("?", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/to"
    server.shutdown()


def test_a_redirect_from_an_allowed_server_to_the_embedded_aws_is_refused(api, stack, redirector):
    state = _run(api, _http_flow(f"{redirector}?{_embedded_aws_urls(stack)[0]}"), "call")
    assert "AWS endpoint" in _denied(state, "call")["errorMessage"]
