"""Claim-check objects under keys unique per write (moto, in process).

The object is written before the task's conditional write, so two writers racing on one task
must each write their own object: the committed record must load the winner's value, never the
loser's. Records written under the older shared keys (`<prefix><taskId>/<seq>/<attr>.json`)
must still load (a local stack restarted on its saved state).
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import boto3
import pytest

from aiwf import payloads
from aiwf.errors import ConcurrentUpdate
from aiwf.repository import Task, TaskRepository
from aiwf.settings import get_settings, store_schema
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("aws_tables")


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(store_schema()["payloads"]["thresholdEnvironment"], "64")
    get_settings.cache_clear()


def _created() -> Task:
    now = "2026-01-01T00:00:00.000000Z"
    task = Task(str(uuid.uuid4()), "f", 1, "RUNNING", 1, now, now, context={"n": 0})
    assert TaskRepository().create(task)
    return task


@pytest.mark.usefixtures("small_threshold")
def test_two_writers_racing_on_one_task_leave_the_winners_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst interleaving, forced: both read seq 1; `first` stores its object and commits;
    only then does `second` store its object, and its conditional write loses."""
    task = _created()
    first_committed = threading.Event()
    original = payloads.encode

    def encode(attribute: str, value: Any, *, key_prefix: str) -> dict[str, dict[str, str]]:
        if threading.current_thread().name == "second":
            assert first_committed.wait(timeout=10)
        return original(attribute, value, key_prefix=key_prefix)

    monkeypatch.setattr(payloads, "encode", encode)
    outcomes: dict[str, str] = {}

    def write() -> None:
        writer = threading.current_thread().name
        try:
            TaskRepository().save(task, context={"writer": writer, "pad": "x" * 500})
            outcomes[writer] = "won"
        except ConcurrentUpdate:
            outcomes[writer] = "lost"
        finally:
            if writer == "first":
                first_committed.set()

    threads = [threading.Thread(target=write, name=name) for name in ("second", "first")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == {"first": "won", "second": "lost"}
    stored = TaskRepository().get(task.task_id)
    assert stored.seq == 2 and stored.context["writer"] == "first"
    assert TaskRepository().history(task.task_id)[-1]["seq"] == 2


@pytest.mark.usefixtures("small_threshold")
def test_each_write_has_a_key_of_its_own() -> None:
    task = _created()
    first = TaskRepository().save(task, context={"pad": "a" * 500})
    keys = {TaskRepository().get_item(first.task_id)["contextRef"]}
    second = TaskRepository().save(first, context={"pad": "b" * 500})
    keys.add(TaskRepository().get_item(second.task_id)["contextRef"])
    assert len(keys) == 2


def test_a_record_written_under_the_old_shared_key_still_loads() -> None:
    task = _created()
    key = f"{store_schema()['payloads']['keyPrefix']}{task.task_id}/1/context.json"
    body = json.dumps({"old": True}).encode()
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=get_settings().payload_bucket, Key=key, Body=body)
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=get_settings().tasks_table,
        Key={"taskId": {"S": task.task_id}},
        UpdateExpression="SET contextRef = :ref REMOVE #context, contextBytes",
        ExpressionAttributeNames={"#context": "context"},
        ExpressionAttributeValues={":ref": {"S": key}},
    )
    assert TaskRepository().get(task.task_id).context == {"old": True}
