"""The client without a stack: where it finds one, and how error answers become typed exceptions."""

from __future__ import annotations

import json

import httpx
import pytest

from aiwf_sdk import (
    BadRequestError,
    Client,
    ConflictError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    ServerError,
    StackOutputsError,
)


def test_from_stack_says_the_pulumi_cli_is_missing(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(StackOutputsError, match="Pulumi CLI is not on PATH"):
        Client.from_stack("dev")


def test_from_outputs_reads_the_file_and_explains_a_missing_one(tmp_path):
    with pytest.raises(StackOutputsError, match="make dev"):
        Client.from_outputs(tmp_path / "none.json")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"taskApiUrl": "http://127.0.0.1:1/", "apiKey": "k", "graphqlUrl": "g"}))
    client = Client.from_outputs(outputs)
    assert (client.url, client.api_key, client.graphql_url, client.realtime_url) == (
        "http://127.0.0.1:1",
        "k",
        "g",
        None,
    )
    outputs.write_text(json.dumps({"taskApiUrl": "http://x"}))
    with pytest.raises(StackOutputsError, match="no apiKey"):
        Client.from_outputs(outputs)


def test_watch_needs_the_graphql_outputs():
    with pytest.raises(StackOutputsError, match="realtimeUrl"):
        Client("http://127.0.0.1:1", "k").tasks.watcher()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (410, GoneError),
        (502, ServerError),
    ],
)
def test_each_error_status_raises_its_class_with_code_message_and_details(status, cls):
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == "k"
        return httpx.Response(
            status, json={"error": {"code": "SOME_CODE", "message": "why", "details": [{"path": "/x"}]}}
        )

    client = Client("http://api", "k", transport=httpx.MockTransport(answer))
    with pytest.raises(cls) as failure:
        client.tasks.get("t")
    assert (failure.value.status, failure.value.code, failure.value.message) == (status, "SOME_CODE", "why")
    assert failure.value.details == [{"path": "/x"}]


def test_api_gateways_own_answers_and_non_json_bodies_are_typed_too():
    answers = iter([httpx.Response(403, json={"message": "Forbidden"}), httpx.Response(502, text="Bad Gateway")])
    client = Client("http://api", "k", transport=httpx.MockTransport(lambda _: next(answers)))
    with pytest.raises(ForbiddenError) as refused:
        client.flows.get("f")
    assert (refused.value.code, refused.value.message) == ("HTTP_403", "Forbidden")
    with pytest.raises(ServerError) as failed:
        client.flows.get("f")
    assert (failed.value.code, failed.value.message) == ("HTTP_502", "Bad Gateway")


def test_a_state_gives_back_exactly_the_json_the_api_sent():
    sent = {"taskId": "t", "status": "FAILED", "seq": 3, "output": None, "error": {"errorName": "E"}, "newField": [1]}
    client = Client("http://api", "k", transport=httpx.MockTransport(lambda _: httpx.Response(200, json=sent)))
    state = client.tasks.get("t")
    assert state.to_json() == sent
    assert state.is_final and not state.succeeded and state.error is not None and state.error.error_name == "E"


def test_watch_ends_cleanly_when_its_follower_has_just_closed_its_loop(monkeypatch):
    """The synchronous `watch` follows on a thread with its own loop, which closes it when the
    subscription ends. The consumer's clean-up may come while that thread is still alive but its
    loop already closed (seen once in a full run: RuntimeError 'Event loop is closed'); here the
    follower lingers after closing its loop every time."""
    import asyncio
    import queue
    import time as clock

    from aiwf_sdk.models import TaskState

    final = TaskState(task_id="t", status="SUCCEEDED", seq=2)

    async def follow(self, task_id, flow_id, timeout, put):
        put(final)
        put(None)

    class LingeringLoop(asyncio.SelectorEventLoop):
        def close(self) -> None:
            super().close()
            clock.sleep(0.3)  # closed, and its thread still alive

    class SlowEnd(queue.Queue):
        def get(self, *args, **kwargs):
            item = super().get(*args, **kwargs)
            if item is None:
                clock.sleep(0.1)  # the consumer reaches its clean-up after the loop was closed
            return item

    monkeypatch.setattr("aiwf_sdk.client.TasksApi._follow", follow)
    monkeypatch.setattr("aiwf_sdk.client.asyncio.new_event_loop", LingeringLoop)
    monkeypatch.setattr("aiwf_sdk.client.queue.Queue", SlowEnd)
    states = list(Client("http://127.0.0.1:1", "k").tasks.watch(task_id="t"))
    assert [state.status for state in states] == ["SUCCEEDED"]
