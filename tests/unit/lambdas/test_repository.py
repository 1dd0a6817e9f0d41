"""The task repository on moto, in process: conditional writes, history, list pages, claim checks.

These are the guarantees every API and the orchestrator build on (docs/architecture.md, "Publishing
state changes": DynamoDB is the source of truth, every change a conditional write with a strictly
increasing `seq`), checked without a local stack.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import boto3
import pytest

from aiwf.errors import BadRequest, ConcurrentUpdate
from aiwf.repository import Task, TaskRepository
from aiwf.settings import get_settings, store_schema
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("aws_tables")


def _task(flow_id: str = "f", started_at: str = "2026-01-01T00:00:00.000000Z", **changes: object) -> Task:
    task = Task(str(uuid.uuid4()), flow_id, 1, "PENDING", 1, started_at, started_at, context={"n": 0})
    return replace(task, **changes)


def _created(**changes: object) -> Task:
    task = _task(**changes)
    assert TaskRepository().create(task)
    return task


def test_a_task_id_is_created_once():
    task = _created()
    assert TaskRepository().create(replace(task, flow_id="other")) is False
    assert TaskRepository().get(task.task_id).flow_id == "f"


def test_two_writers_from_the_same_seq_one_wins():
    task = _created()
    first, second = TaskRepository(), TaskRepository()
    won = first.save(task, status="RUNNING")
    with pytest.raises(ConcurrentUpdate):
        second.save(task, status="ABORTED")
    stored = TaskRepository().get(task.task_id)
    assert (stored.status, stored.seq) == ("RUNNING", 2) == (won.status, won.seq)
    assert [s["status"] for s in TaskRepository().history(task.task_id)] == ["PENDING", "RUNNING"]


def test_a_resume_token_is_consumed_by_one_writer():
    task = TaskRepository().save(_created(), status="WAITING", resume_token_hash="h1")
    with pytest.raises(ConcurrentUpdate):
        TaskRepository().save(task, expect_token_hash="other", status="RUNNING", resume_token_hash=None)
    done = TaskRepository().save(task, expect_token_hash="h1", status="RUNNING", resume_token_hash=None)
    with pytest.raises(ConcurrentUpdate):  # the same token again: the seq moved on
        TaskRepository().save(task, expect_token_hash="h1", status="RUNNING")
    assert TaskRepository().get(task.task_id).resume_token_hash is None and done.seq == 3


def test_history_is_contiguous_and_a_lost_race_writes_no_record():
    task = _created()
    repo = TaskRepository()
    current = task
    for n in range(1, 6):
        stale = current
        current = repo.save(current, status="RUNNING", context={"n": n}, current_step=f"s{n}")
        with pytest.raises(ConcurrentUpdate):
            repo.save(stale, status="FAILED")
    history = repo.history(task.task_id)
    assert [s["seq"] for s in history] == list(range(1, 7))
    assert [s["currentStep"] for s in history] == [None, "s1", "s2", "s3", "s4", "s5"]
    assert "FAILED" not in {s["status"] for s in history}
    assert all("context" not in s and "resumeTokenHash" not in s for s in history)


def test_history_page_after_a_seq_stops_where_admit_says_and_goes_on():
    task = _created()
    repo = TaskRepository()
    current = task
    for _ in range(4):
        current = repo.save(current, status="RUNNING")
    seqs, token = repo.history_page(task.task_id, after_seq=1, show=lambda item: item["seq"], admit=lambda s: s < 4)
    assert seqs == [2, 3] and token is not None
    rest, end = repo.history_page(task.task_id, next_token=token, show=lambda item: item["seq"], admit=lambda s: True)
    assert rest == [4, 5] and end is None


def _seed_listing() -> dict[str, Task]:
    """Six tasks over two flows and two statuses, started one second apart, and one branch record."""
    repo = TaskRepository()
    prefix = uuid.uuid4().hex[:6]
    tasks = {}
    for i in range(6):
        flow = f"{prefix}-a" if i % 2 == 0 else f"{prefix}-b"
        task = _created(flow_id=flow, started_at=f"2030-01-01T00:00:0{i}.000000Z")
        if i >= 3:
            task = repo.save(task, status="RUNNING")
        tasks[f"t{i}"] = task
    branch = _task(flow_id=f"{prefix}-a", started_at="2030-01-01T00:00:09.000000Z")
    assert repo.create(replace(branch, branch_id="b0", branch_of={"taskId": tasks["t0"].task_id, "stepId": "p"}))
    return tasks


def _all_pages(limit: int, **filters: str | None) -> list[str]:
    repo = TaskRepository()
    seen, token = [], None
    while True:
        page, token = repo.list(
            status=filters.get("status"), flow_id=filters.get("flow_id"), limit=limit, next_token=token
        )
        assert len(page) == limit or token is None, "a page is full when more exist"
        seen += [task.task_id for task in page]
        if token is None:
            return seen


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_each_index_lists_newest_first_across_pages_without_branch_records(limit):
    tasks = _seed_listing()
    newest_first = [tasks[f"t{i}"] for i in reversed(range(6))]
    flow_a = tasks["t0"].flow_id
    ids = lambda chosen: [t.task_id for t in chosen]  # noqa: E731
    # every task (byStartedAt); the ones of this test are the newest of the table (year 2030)
    assert _all_pages(limit)[:6] == ids(newest_first)
    # by flow (byFlow), by flow and status (byFlow, filtered)
    assert _all_pages(limit, flow_id=flow_a) == ids(t for t in newest_first if t.flow_id == flow_a)
    assert _all_pages(limit, flow_id=flow_a, status="RUNNING") == [tasks["t4"].task_id]
    # by status (byStatus)
    running = [t for t in newest_first if t.status == "RUNNING"]
    assert _all_pages(limit, status="RUNNING")[: len(running)] == ids(running)


def test_a_next_token_this_api_did_not_issue_is_a_bad_request():
    for token in ("not base64!", "WzFd"):  # garbage, and a JSON list
        with pytest.raises(BadRequest) as caught:
            TaskRepository().list(status=None, flow_id=None, limit=1, next_token=token)
        assert caught.value.code == "INVALID_NEXT_TOKEN"


def test_large_values_are_claim_checks_in_the_bucket_under_the_key_prefix(monkeypatch):
    monkeypatch.setenv(store_schema()["payloads"]["thresholdEnvironment"], "64")
    get_settings.cache_clear()
    big = {"text": "x" * 500}
    task = TaskRepository().save(_created(), status="SUCCEEDED", output=big, context={"doc": big})
    item = TaskRepository().get_item(task.task_id)
    assert "output" not in item and item["outputBytes"] == len(json.dumps(big, separators=(",", ":")))
    key = item["outputRef"]
    assert key.startswith(f"{store_schema()['payloads']['keyPrefix']}{task.task_id}/2/")
    body = (
        boto3.client("s3", region_name="us-east-1")
        .get_object(Bucket=get_settings().payload_bucket, Key=key)["Body"]
        .read()
    )
    assert json.loads(body) == big
    stored = TaskRepository().get(task.task_id)
    assert stored.output == big and stored.context == {"doc": big}
    assert TaskRepository().history(task.task_id)[-1]["output"] == big


def test_small_values_stay_inline():
    task = TaskRepository().save(_created(), status="SUCCEEDED", output={"ok": True})
    item = TaskRepository().get_item(task.task_id)
    assert item["output"] == '{"ok":true}' and "outputRef" not in item


def test_set_execution_is_no_state_change():
    task = _created()
    TaskRepository().set_execution(task, "arn:aws:states:us-east-1:123456789012:execution:m:x")
    stored = TaskRepository().get(task.task_id)
    assert stored.execution_arn.endswith(":x") and stored.seq == 1
    assert len(TaskRepository().history(task.task_id)) == 1


def test_history_between_and_branch_parent_serve_a_replay():
    parent = _created()
    branch = _task(branch_id="b1", branch_of={"taskId": parent.task_id, "stepId": "p", "index": 0})
    branch = replace(branch, started_at="2031-05-05T00:00:00.000000Z", updated_at="2031-05-05T00:00:00.000000Z")
    repo = TaskRepository()
    assert repo.create(branch)
    window = repo.history_between("2031-05-04T23:59:59Z", "2031-05-05T00:00:01Z")
    assert [(i["taskId"], i["seq"]) for i in window] == [(branch.task_id, 1)]
    assert json.loads(repo.branch_parent(branch.task_id))["taskId"] == parent.task_id
    assert repo.branch_parent(parent.task_id) is None and repo.branch_parent("missing") is None
