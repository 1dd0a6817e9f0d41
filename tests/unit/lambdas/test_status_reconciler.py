"""The status reconciler ends a task once, however often and however late its event arrives.

EventBridge delivers at least once, and a Finalize (or another delivery) may commit between the
reconciler's read and its write: the task still gets exactly one final record.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from aiwf.clock import now_iso
from aiwf.reconciler import reconcile
from aiwf.repository import Task, TaskRepository
from tests.unit.moto_runtime import aws_tables  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("aws_tables")


def _running_task() -> Task:
    task_id = str(uuid.uuid4())
    now = now_iso()
    task = Task(task_id, "f", 1, "PENDING", 1, now, now, context={"taskId": task_id}, current_step="wait")
    repo = TaskRepository()
    assert repo.create(task)
    return repo.save(task, status="RUNNING")


def _event(task: Task, status: str = "ABORTED") -> dict[str, Any]:
    return {
        "detail": {
            "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:m:{task.task_id}",
            "name": task.task_id,
            "status": status,
            "input": json.dumps({"taskId": task.task_id}),
        }
    }


def test_the_same_event_twice_ends_the_task_once():
    task = _running_task()
    first, second = reconcile(_event(task)), reconcile(_event(task))
    assert first["changed"] is True and second["changed"] is False
    history = TaskRepository().history(task.task_id)
    assert [state["status"] for state in history] == ["PENDING", "RUNNING", "ABORTED"]


def test_a_change_committed_between_read_and_write_is_not_overwritten(monkeypatch):
    """The reconciler read RUNNING; Finalize committed FAILED before the reconciler's write."""
    task = _running_task()
    repo_get = TaskRepository.get
    raced = []

    def get_then_race(self: TaskRepository, task_id: str) -> Task | None:
        current = repo_get(self, task_id)
        if not raced and current is not None and not current.is_final:
            raced.append(TaskRepository().save(current, status="FAILED", error={"errorName": "Boom"}))
        return current  # the stale read: the reconciler's conditional write must lose

    monkeypatch.setattr(TaskRepository, "get", get_then_race)
    answer = reconcile(_event(task))
    assert answer["changed"] is False
    statuses = [state["status"] for state in TaskRepository().history(task.task_id)]
    assert statuses == ["PENDING", "RUNNING", "FAILED"]  # one final record, Finalize's


def test_an_event_of_an_older_execution_is_ignored():
    task = _running_task()
    TaskRepository().set_execution(task, "arn:aws:states:us-east-1:123456789012:execution:m:newer")
    assert reconcile(_event(task))["changed"] is False
    assert TaskRepository().get(task.task_id).status == "RUNNING"
