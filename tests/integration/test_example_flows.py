"""The example flows in flows/, exactly as shipped, run end to end on the local stack, on each engine.

External systems (the approver, the job service) are a stub HTTP server on 127.0.0.1; models
are the local stack's deterministic local model, steered by a `reply:` marker in the input.
Every test runs once per engine: the flow as shipped (the stage's default engine, Step Functions)
and the same document with `engine: durable` under its own id; the results must be the same.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

FLOWS = Path(__file__).resolve().parents[2] / "flows"


ENGINES = ("stepfunctions", "durable")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def _register(api, name: str, engine: str) -> str:
    document = yaml.safe_load((FLOWS / f"{name}.yaml").read_text())
    if engine == "durable":
        document = {**document, "id": f"{document['id']}-durable", "engine": "durable"}
    response = api.call("PUT", f"/flows/{document['id']}", json=document)
    assert response.status_code in (200, 201), response.text
    return document["id"]


def _start(api, flow_id: str, task_input: dict) -> str:
    started = api.call("POST", "/tasks", json={"flowId": flow_id, "input": task_input})
    assert started.status_code == 201, started.text
    return started.json()["taskId"]


def test_document_triage_routine_documents_are_filed(api, engine):
    task_id = _start(api, _register(api, "document-triage", engine), {"text": "Quarterly newsletter. reply: routine"})

    state = api.wait_for(task_id)

    assert state["status"] == "SUCCEEDED", state["error"]
    assert state["output"] == {"label": "routine", "action": "filed"}


@pytest.mark.parametrize(("approved", "status"), [(True, "SUCCEEDED"), (False, "FAILED")])
def test_document_triage_urgent_documents_wait_for_a_human(api, stub, engine, approved, status):
    path = f"/approvals/{uuid.uuid4().hex}"
    task_id = _start(
        api,
        _register(api, "document-triage", engine),
        {"text": "The production database is down. reply: urgent", "approvalUrl": stub.url + path},
    )
    notified = stub.wait_for(path)[0].body
    waiting = api.wait_for(task_id, lambda s: s["status"] == "WAITING")
    assert waiting["currentStep"] == "approve" and "resumeToken" not in str(waiting)

    resumed = api.call(
        "PUT",
        f"/tasks/{task_id}",
        json={
            "resumeToken": notified["resumeToken"],
            "status": "SUCCEEDED",
            "output": {"approved": approved, "by": "ops"},
        },
    )
    assert resumed.status_code == 202, resumed.text

    state = api.wait_for(task_id)
    assert state["status"] == status
    if approved:
        assert state["output"] == {"label": "urgent", "action": "escalated", "approvedBy": "ops"}
    else:
        assert state["error"]["errorName"] == "Rejected" and state["error"]["stepId"] == "rejected"


def test_research_fanout_collects_answers_and_normalizes_the_failed_branch(api, engine):
    questions = [
        "What is Step Functions? reply: A workflow service.",
        "What is the meaning of everything? reply: unknown",
        "What is DynamoDB? reply: A key-value database.",
    ]
    task_id = _start(api, _register(api, "research-fanout", engine), {"questions": questions})

    state = api.wait_for(task_id, timeout=60)

    assert state["status"] == "SUCCEEDED", state["error"]
    report = state["output"]
    assert report["answers"] == ["A workflow service.", "A key-value database."]
    assert report["errors"] == [
        {
            "errorName": "NoAnswer",
            "errorMessage": f"The model could not answer: {questions[1]}",
            "errorDetails": None,
            "retryable": False,
            "stepId": "unanswered",
            "branchId": "1",
        }
    ]
    assert report["summary"].startswith("local-")  # the summary came from a model call


def test_long_job_polls_the_external_job_then_summarises(api, stub, engine):
    jobs = f"/jobs-{uuid.uuid4().hex[:8]}"
    stub.reply(jobs, (202, {"id": "job-7", "state": "queued"}))
    stub.reply(f"{jobs}/job-7", (200, {"state": "running"}), (200, {"state": "done", "result": "42 pages"}))

    task_id = _start(
        api, _register(api, "long-job", engine), {"jobsUrl": stub.url + jobs, "document": "s3://bucket/doc.pdf"}
    )
    polling = api.wait_for(task_id, lambda s: s["status"] in ("POLLING", "SUCCEEDED", "FAILED"))
    state = api.wait_for(task_id, timeout=60)

    assert polling["status"] == "POLLING"
    assert state["status"] == "SUCCEEDED", state["error"]
    assert state["output"]["jobId"] == "job-7" and state["output"]["result"] == "42 pages"
    assert state["output"]["summary"].startswith("local-")
    assert stub.received(jobs)[0].body == {"document": "s3://bucket/doc.pdf"}
    assert len(stub.received(f"{jobs}/job-7")) == 2


@pytest.mark.parametrize(("name", "status"), [("Ada", "SUCCEEDED"), ("nobody", "FAILED")])
def test_hello_greets_or_fails_by_its_fail_step(api, engine, name, status):
    task_id = _start(api, _register(api, "hello", engine), {"name": name})

    state = api.wait_for(task_id)

    assert state["status"] == status
    if status == "SUCCEEDED":
        assert state["output"] == {"greeting": "Hello, Ada!", "name": "Ada"}
    else:
        assert state["error"] == {
            "errorName": "NoName",
            "errorMessage": "Cannot greet nobody",
            "errorDetails": None,
            "retryable": False,
            "stepId": "reject",
            "branchId": None,
        }
    history = api.call("GET", f"/tasks/{task_id}/history").json()["items"]
    last = "done" if status == "SUCCEEDED" else "reject"
    assert [(item["seq"], item["status"], item["currentStep"]) for item in history] == [
        (1, "PENDING", None),
        (2, "RUNNING", "prepare"),
        (3, "RUNNING", "check"),
        (4, "RUNNING", last),
        (5, status, last),
    ]
