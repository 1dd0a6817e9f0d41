"""Callbacks (aiwf.callbacks) on moto in process: a wait parks on the engine's token and hands
out one of its own; a resume completes the engine's wait once.

The resume token is ours (never the engine's), only its hash is stored, a retried registerWait
announces the same wait again, and a resume is one conditional write: a second resume with the
same token, a wrong token, a task not waiting and a wait past its deadline each get their own API
error, by task id and by wait id alike. The Step Functions calls that complete the engine's token
are recorded by a stand-in: which error a failed resume sends is the protocol.
"""

from __future__ import annotations

import json
import string
import uuid
from typing import Any

import pytest

from aiwf import callbacks, durable_executions, standard_executions
from aiwf.answers import public_state
from aiwf.callbacks import NotifyFailed, callback_heartbeat, callback_task, register_wait, resume_task
from aiwf.errors import Conflict, Forbidden, Gone, NotFound
from aiwf.protocol import Action, ErrorName, StepStateKind
from aiwf.repository import TaskRepository
from aiwf.resume_tokens import new_resume_token, token_hash
from tests.unit.lambdas.issued_tokens import record_issued_tokens
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import drive, start

pytestmark = pytest.mark.usefixtures("aws_tables")


@pytest.fixture
def issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resume tokens waits handed out in this test, oldest first."""
    return record_issued_tokens(monkeypatch)


# The engine's handle on the wait: what the .waitForTaskToken state passes registerWait.
ENGINE_TOKEN = "sfn-task-token-" + "x" * 40


class FakeStepFunctions:
    """Records SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task_success(self, **kwargs: Any) -> None:
        self.sent.append(("success", kwargs))

    def send_task_failure(self, **kwargs: Any) -> None:
        self.sent.append(("failure", kwargs))

    def send_task_heartbeat(self, **kwargs: Any) -> None:
        self.sent.append(("heartbeat", kwargs))


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> FakeStepFunctions:
    fake = FakeStepFunctions()
    monkeypatch.setattr(standard_executions, "client", lambda service: fake)
    return fake


def waiting_task(wait: dict[str, Any] | None = None) -> str:
    """A task parked on its `approve` step, as WaitForEvent leaves it (`TOKEN()` resumes it)."""
    step = {"type": "wait_for_event", "timeoutSeconds": 3600, "resultPath": "approval", "next": "done", **(wait or {})}
    document = {
        "id": f"wait-{uuid.uuid4().hex[:8]}",
        "startAt": "approve",
        "steps": {
            "approve": {**step, "catch": "rejected"},
            "rejected": {"type": "succeed", "outputPath": "error"},
            "done": {"type": "succeed", "outputPath": "approval"},
        },
    }
    task_id = start(document, {"doc": 1})
    answer = drive(task_id)
    assert answer == {"taskId": task_id, "action": Action.WAIT, "stepId": "approve", "timeoutSeconds": 3600}
    register_wait(task_id, "approve", ENGINE_TOKEN)
    return task_id


@pytest.fixture
def TOKEN(issued_tokens: list[str]) -> Any:
    """The last resume token a wait handed out."""
    return lambda: issued_tokens[-1]


def test_a_resume_token_is_256_random_bits_and_a_wait_id_is_url_safe():
    tokens = {new_resume_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(token) == 43 for token in tokens)  # 32 bytes, base64url
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert all(set(token) <= alphabet for token in tokens)
    assert token_hash("t") == token_hash("t") != token_hash("u") and len(token_hash("t")) == 64


def test_register_wait_stores_a_hash_of_its_own_token_and_keeps_the_engine_token(TOKEN):
    task_id = waiting_task()
    task = TaskRepository().get(task_id)
    assert TOKEN() != ENGINE_TOKEN and ENGINE_TOKEN not in TOKEN()
    assert task.status == "WAITING" and task.resume_token_hash == token_hash(TOKEN()) != TOKEN()
    assert task.engine_token == ENGINE_TOKEN and task.wait_id
    assert task.waiting_for["stepId"] == "approve" and task.waiting_for["timeoutSeconds"] == 3600
    assert TOKEN() not in json.dumps(task.state()) and ENGINE_TOKEN not in json.dumps(task.state())
    answer = json.dumps(public_state(TaskRepository().get_item(task_id)))  # what GET /tasks/{taskId} shows
    assert ENGINE_TOKEN not in answer and token_hash(TOKEN()) not in answer


def test_a_retried_registration_announces_the_same_wait_with_a_new_token(TOKEN, sfn):
    """Only the first token's hash was stored, so it cannot be told again: the retry (the
    .waitForTaskToken Lambda invoked again) hands out a new one, without a state change."""
    task_id = waiting_task()
    first, before = TOKEN(), TaskRepository().get(task_id)

    register_wait(task_id, "approve", ENGINE_TOKEN)

    after = TaskRepository().get(task_id)
    assert after.seq == before.seq and after.wait_id == before.wait_id and TOKEN() != first
    with pytest.raises(Gone) as replaced:
        resume_task(task_id, first, "SUCCEEDED", None, None)
    assert replaced.value.code == "TOKEN_REPLACED"
    resume_task(task_id, TOKEN(), "SUCCEEDED", None, None)
    assert sfn.sent[0][1]["taskToken"] == ENGINE_TOKEN


def test_a_wait_with_a_heartbeat_routes_to_the_heartbeat_state():
    task_id = start(
        {
            "id": f"hb-{uuid.uuid4().hex[:8]}",
            "startAt": "w",
            "steps": {
                "w": {"type": "wait_for_event", "timeoutSeconds": 60, "heartbeatSeconds": 10, "next": "d"},
                "d": {"type": "succeed"},
            },
        }
    )
    assert drive(task_id)["heartbeatSeconds"] == 10


def test_a_resume_completes_the_engine_token_and_the_output_lands_at_the_result_path(sfn, TOKEN):
    task_id = waiting_task()

    task = resume_task(task_id, TOKEN(), "SUCCEEDED", {"ok": True}, None)

    assert task.status == "RUNNING" and task.resume_token_hash is None
    assert task.step_state["kind"] == StepStateKind.RESUME
    assert sfn.sent == [("success", {"taskToken": ENGINE_TOKEN, "output": json.dumps({"taskId": task_id})})]
    assert drive(task_id)["action"] == Action.SUCCEEDED
    assert TaskRepository().get(task_id).output == {"ok": True}


def test_a_failed_resume_sends_the_protocol_error_and_the_step_catch_gets_the_callers_error(sfn, TOKEN):
    task_id = waiting_task()

    resume_task(task_id, TOKEN(), "FAILED", None, {"errorName": "Rejected", "errorMessage": "no"})

    kind, sent = sfn.sent[0]
    assert kind == "failure" and sent["error"] == ErrorName.RESUME_FAILURE
    assert json.loads(sent["cause"])["errorName"] == "Rejected"
    assert drive(task_id)["action"] == Action.SUCCEEDED  # the wait step's catch
    error = TaskRepository().get(task_id).output
    assert error["errorName"] == "Rejected" and error["stepId"] == "approve"


def test_a_failed_resume_without_an_error_of_its_own_is_resumed_with_failure(sfn, TOKEN):
    task_id = waiting_task()
    resume_task(task_id, TOKEN(), "FAILED", None, None)
    drive(task_id)
    assert TaskRepository().get(task_id).output["errorName"] == ErrorName.RESUMED_WITH_FAILURE


def test_a_token_resumes_once(sfn, TOKEN):
    task_id = waiting_task()
    resume_task(task_id, TOKEN(), "SUCCEEDED", None, None)
    with pytest.raises(Conflict) as raised:
        resume_task(task_id, TOKEN(), "SUCCEEDED", None, None)
    assert raised.value.code == "NOT_WAITING" and len(sfn.sent) == 1


def test_a_wrong_token_is_forbidden(sfn, TOKEN):
    task_id = waiting_task()
    with pytest.raises(Forbidden):
        resume_task(task_id, "another", "SUCCEEDED", None, None)
    assert TaskRepository().get(task_id).status == "WAITING" and not sfn.sent


def test_a_wait_past_its_deadline_is_gone(sfn, TOKEN):
    task_id = waiting_task()
    repo = TaskRepository()
    task = repo.get(task_id)
    repo.save(task, waiting_for={**task.waiting_for, "expiresAt": "2000-01-01T00:00:00Z"})
    with pytest.raises(Gone):
        resume_task(task_id, TOKEN(), "SUCCEEDED", None, None)
    assert not sfn.sent


def test_the_notify_url_gets_the_token_the_wait_id_and_the_callback_url_and_a_refusal_fails_the_registration(
    monkeypatch, TOKEN
):
    posted: list[dict[str, Any]] = []
    status = {"code": 202}

    class Response:
        @property
        def status(self) -> int:
            return status["code"]

    def request(method: str, url: str, **kwargs: Any) -> Response:
        posted.append({"method": method, "url": url, "body": json.loads(kwargs["body"])})
        return Response()

    monkeypatch.setattr(callbacks.egress, "request", request)
    monkeypatch.setenv("TASK_API_URL", "https://api.example.com/dev")
    task_id = waiting_task({"notify": {"url": "https://example.com/hook/{{ input.doc }}"}})

    wait_id = TaskRepository().get(task_id).wait_id
    assert posted == [
        {
            "method": "POST",
            "url": "https://example.com/hook/1",
            "body": {
                "taskId": task_id,
                "stepId": "approve",
                "branchId": None,
                "waitId": wait_id,
                "resumeToken": TOKEN(),
                "callbackUrl": f"https://api.example.com/dev/callbacks/{wait_id}",
                "input": {"doc": 1},
            },
        }
    ]
    assert ENGINE_TOKEN not in json.dumps(posted)
    status["code"] = 500
    with pytest.raises(NotifyFailed):
        register_wait(task_id, "approve", ENGINE_TOKEN)


def test_a_callback_by_wait_id_resumes_once_with_the_token_alone(sfn, TOKEN):
    task_id = waiting_task()
    wait_id = TaskRepository().get(task_id).wait_id

    with pytest.raises(Forbidden) as wrong:
        callback_task(wait_id, "not-the-token", "SUCCEEDED", None, None)
    assert wrong.value.code == "WRONG_TOKEN" and not sfn.sent
    with pytest.raises(Forbidden):  # the engine's token is no resume token
        callback_task(wait_id, ENGINE_TOKEN, "SUCCEEDED", None, None)

    task = callback_task(wait_id, TOKEN(), "SUCCEEDED", {"ok": 1}, None)

    assert task.task_id == task_id and task.status == "RUNNING"
    assert sfn.sent == [("success", {"taskToken": ENGINE_TOKEN, "output": json.dumps({"taskId": task_id})})]
    with pytest.raises(Conflict) as used:
        callback_task(wait_id, TOKEN(), "SUCCEEDED", None, None)
    assert used.value.code == "NOT_WAITING" and len(sfn.sent) == 1


def test_a_callback_to_an_unknown_wait_is_not_found(monkeypatch):
    monkeypatch.setattr(callbacks, "_WAIT_LOOKUP_PAUSE_SECONDS", 0)
    with pytest.raises(NotFound) as unknown:
        callback_task("no-such-wait", "token", "SUCCEEDED", None, None)
    assert unknown.value.code == "WAIT_NOT_FOUND"
    with pytest.raises(NotFound):
        callback_heartbeat("no-such-wait", "token")


def test_a_callback_past_the_deadline_is_gone_and_a_heartbeat_uses_the_engine_token(sfn, TOKEN):
    task_id = waiting_task()
    repo = TaskRepository()
    task = repo.get(task_id)

    assert callback_heartbeat(task.wait_id, TOKEN())["taskId"] == task_id
    assert sfn.sent == [("heartbeat", {"taskToken": ENGINE_TOKEN})]
    with pytest.raises(Forbidden):
        callback_heartbeat(task.wait_id, "wrong")

    repo.save(task, waiting_for={**task.waiting_for, "expiresAt": "2000-01-01T00:00:00Z"})
    with pytest.raises(Gone) as expired:
        callback_task(task.wait_id, TOKEN(), "SUCCEEDED", None, None)
    assert expired.value.code == "WAIT_EXPIRED" and len(sfn.sent) == 1


DURABLE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:aiwf-dev-durable-orchestrator:1/durable-execution/t/x"


class FakeLambda:
    """Records the durable callback calls."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_durable_execution_callback_success(self, **kwargs: Any) -> None:
        self.sent.append(("success", kwargs))

    def send_durable_execution_callback_heartbeat(self, **kwargs: Any) -> None:
        self.sent.append(("heartbeat", kwargs))


def test_on_the_durable_engine_a_callback_completes_the_callback_id_the_record_keeps(monkeypatch, TOKEN):
    """The durable orchestrator's submitter registers the wait with its callback id (as the state
    machine does with its task token): the same token of our own, the same answers by wait id."""
    lam = FakeLambda()
    monkeypatch.setattr(durable_executions, "client", lambda service: lam)
    monkeypatch.setattr(callbacks, "_WAIT_LOOKUP_PAUSE_SECONDS", 0)
    task_id = waiting_task()
    repo = TaskRepository()
    task = repo.set_execution(repo.get(task_id), DURABLE_ARN)
    callback_id = task.engine_token
    assert TOKEN() != callback_id

    with pytest.raises(Forbidden):
        callback_task(task.wait_id, callback_id, "SUCCEEDED", None, None)
    with pytest.raises(NotFound):
        callback_task("not-a-wait", TOKEN(), "SUCCEEDED", None, None)
    callback_heartbeat(task.wait_id, TOKEN())
    callback_task(task.wait_id, TOKEN(), "SUCCEEDED", {"ok": 1}, None)

    assert lam.sent == [
        ("heartbeat", {"CallbackId": callback_id}),
        ("success", {"CallbackId": callback_id, "Result": json.dumps({"taskId": task_id}).encode()}),
    ]
    with pytest.raises(Conflict):
        callback_task(task.wait_id, TOKEN(), "SUCCEEDED", None, None)


def test_a_wait_registered_before_waits_kept_the_engine_token_resumes_with_the_token_it_handed_out(sfn):
    """Such a record holds the hash of the engine's token (then the resume token) and no engine
    token: the token presented is the engine's, and completes the wait."""
    task_id = waiting_task()
    repo = TaskRepository()
    legacy = repo.save(repo.get(task_id), resume_token_hash=token_hash(ENGINE_TOKEN), engine_token=None, wait_id=None)
    assert legacy.engine_token is None

    resume_task(task_id, ENGINE_TOKEN, "SUCCEEDED", None, None)

    assert sfn.sent == [("success", {"taskToken": ENGINE_TOKEN, "output": json.dumps({"taskId": task_id})})]
