"""Callbacks (aiwf.callbacks) on moto in process: a wait parks on a token, a resume completes it once.

The token itself is never stored (only its hash), a retried registerWait changes nothing, and a
resume is one conditional write: a second resume with the same token, a wrong token, a task not
waiting and a wait past its deadline each get their own API error. The Step Functions calls that
complete the token are recorded by a stand-in: which error a failed resume sends is the protocol.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from aiwf import callbacks, standard_executions
from aiwf.callbacks import NotifyFailed, register_wait, resume_task, token_hash
from aiwf.errors import Conflict, Forbidden, Gone
from aiwf.protocol import Action, ErrorName, StepStateKind
from aiwf.repository import TaskRepository
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import drive, start

pytestmark = pytest.mark.usefixtures("aws_tables")
TOKEN = "token-" + "x" * 40


class FakeStepFunctions:
    """Records SendTaskSuccess / SendTaskFailure."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task_success(self, **kwargs: Any) -> None:
        self.sent.append(("success", kwargs))

    def send_task_failure(self, **kwargs: Any) -> None:
        self.sent.append(("failure", kwargs))


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> FakeStepFunctions:
    fake = FakeStepFunctions()
    monkeypatch.setattr(standard_executions, "client", lambda service: fake)
    return fake


def waiting_task(wait: dict[str, Any] | None = None) -> str:
    """A task parked on its `approve` step, as WaitForEvent leaves it."""
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
    register_wait(task_id, "approve", TOKEN)
    return task_id


def test_register_wait_stores_the_hash_and_the_deadline_and_a_retry_changes_nothing():
    task_id = waiting_task()
    task = TaskRepository().get(task_id)
    assert task.status == "WAITING" and task.resume_token_hash == token_hash(TOKEN) != TOKEN
    assert task.waiting_for["stepId"] == "approve" and task.waiting_for["timeoutSeconds"] == 3600

    register_wait(task_id, "approve", TOKEN)  # the .waitForTaskToken Lambda retried

    assert TaskRepository().get(task_id).seq == task.seq


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


def test_a_resume_completes_the_token_and_the_output_lands_at_the_result_path(sfn):
    task_id = waiting_task()

    task = resume_task(task_id, TOKEN, "SUCCEEDED", {"ok": True}, None)

    assert task.status == "RUNNING" and task.resume_token_hash is None
    assert task.step_state["kind"] == StepStateKind.RESUME
    assert sfn.sent == [("success", {"taskToken": TOKEN, "output": json.dumps({"taskId": task_id})})]
    assert drive(task_id)["action"] == Action.SUCCEEDED
    assert TaskRepository().get(task_id).output == {"ok": True}


def test_a_failed_resume_sends_the_protocol_error_and_the_step_catch_gets_the_callers_error(sfn):
    task_id = waiting_task()

    resume_task(task_id, TOKEN, "FAILED", None, {"errorName": "Rejected", "errorMessage": "no"})

    kind, sent = sfn.sent[0]
    assert kind == "failure" and sent["error"] == ErrorName.RESUME_FAILURE
    assert json.loads(sent["cause"])["errorName"] == "Rejected"
    assert drive(task_id)["action"] == Action.SUCCEEDED  # the wait step's catch
    error = TaskRepository().get(task_id).output
    assert error["errorName"] == "Rejected" and error["stepId"] == "approve"


def test_a_failed_resume_without_an_error_of_its_own_is_resumed_with_failure(sfn):
    task_id = waiting_task()
    resume_task(task_id, TOKEN, "FAILED", None, None)
    drive(task_id)
    assert TaskRepository().get(task_id).output["errorName"] == ErrorName.RESUMED_WITH_FAILURE


def test_a_token_resumes_once(sfn):
    task_id = waiting_task()
    resume_task(task_id, TOKEN, "SUCCEEDED", None, None)
    with pytest.raises(Conflict) as raised:
        resume_task(task_id, TOKEN, "SUCCEEDED", None, None)
    assert raised.value.code == "NOT_WAITING" and len(sfn.sent) == 1


def test_a_wrong_token_is_forbidden(sfn):
    task_id = waiting_task()
    with pytest.raises(Forbidden):
        resume_task(task_id, "another", "SUCCEEDED", None, None)
    assert TaskRepository().get(task_id).status == "WAITING" and not sfn.sent


def test_a_wait_past_its_deadline_is_gone(sfn):
    task_id = waiting_task()
    repo = TaskRepository()
    task = repo.get(task_id)
    repo.save(task, waiting_for={**task.waiting_for, "expiresAt": "2000-01-01T00:00:00Z"})
    with pytest.raises(Gone):
        resume_task(task_id, TOKEN, "SUCCEEDED", None, None)
    assert not sfn.sent


def test_the_notify_url_gets_the_token_and_a_refusal_fails_the_registration(monkeypatch):
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
    task_id = waiting_task({"notify": {"url": "https://example.com/hook/{{ input.doc }}"}})

    assert posted == [
        {
            "method": "POST",
            "url": "https://example.com/hook/1",
            "body": {"taskId": task_id, "stepId": "approve", "resumeToken": TOKEN, "input": {"doc": 1}},
        }
    ]
    status["code"] = 500
    with pytest.raises(NotifyFailed):
        register_wait(task_id, "approve", TOKEN)
