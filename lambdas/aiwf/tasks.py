"""Starting tasks: record first, then start the execution named after the task.

The task id derives from the idempotency `name`, so a repeated request finds the same record,
and the execution name is the task id, so Step Functions itself refuses a second execution.
A start that failed half-way (record written, execution not started) is completed by a retry.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from botocore.exceptions import ClientError

from .aws import client
from .clock import now_iso
from .errors import Conflict, NotFound
from .flow_store import FlowStore
from .repository import Task, TaskRepository
from .settings import get_settings

log = logging.getLogger(__name__)
_NAME_NAMESPACE = uuid.UUID("6f1f8a57-4d0b-4b8e-9a55-2a3c9d8f0e11")


def task_id_for(name: str | None) -> str:
    return str(uuid.uuid5(_NAME_NAMESPACE, name)) if name else str(uuid.uuid4())


def start_task(flow_id: str, task_input: Any, name: str | None) -> tuple[Task, bool]:
    """Create (or find, by name) the task and make sure its execution runs; True if created now."""
    repo = TaskRepository()
    task_id = task_id_for(name)
    existing = repo.get(task_id) if name else None
    if existing is None:
        flows = FlowStore()
        flow = flows.get(flow_id)
        if flow is None:
            raise NotFound(f"flow {flow_id!r} is not registered", code="FLOW_NOT_FOUND")
        head = flows.head(flow_id)
        if head is not None and head.retired:
            raise Conflict(
                f"flow {flow_id!r} is retired: register it again (PUT /flows/{flow_id}) to start tasks",
                code="FLOW_RETIRED",
            )
        now = now_iso()
        task = Task(
            task_id=task_id,
            flow_id=flow_id,
            flow_version=flow.version,
            status="PENDING",
            seq=1,
            started_at=now,
            updated_at=now,
            context={"input": task_input, "taskId": task_id},
            name=name,
        )
        created = repo.create(task)
        if not created:  # a concurrent request with the same name won the race
            existing = repo.get(task_id)
    if existing is not None:
        _check_same_request(existing, flow_id, task_input)
        task, created = existing, False
    if task.execution_arn is None:
        task = repo.set_execution(task, _start_execution(task.task_id))
    return task, created


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _check_same_request(existing: Task, flow_id: str, task_input: Any) -> None:
    """A repeated `name` is a retry only if it asks for the same thing; anything else would
    silently answer with a task the caller did not ask for, so it is a 409 instead."""
    if existing.flow_id != flow_id:
        raise Conflict(
            f"name {existing.name!r} already started a task of flow {existing.flow_id!r}",
            code="IDEMPOTENCY_CONFLICT",
            details=[{"path": "/flowId", "message": f"the task named {existing.name!r} runs {existing.flow_id!r}"}],
        )
    if _canonical(existing.context.get("input")) != _canonical(task_input):
        raise Conflict(
            f"name {existing.name!r} already started a task with another input",
            code="IDEMPOTENCY_CONFLICT",
            details=[{"path": "/input", "message": "differs from the input the named task started with"}],
        )


def _start_execution(task_id: str) -> str:
    state_machine_arn = get_settings().state_machine_arn
    try:
        response = client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=task_id, input=json.dumps({"taskId": task_id, "rounds": 0})
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        execution_arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{task_id}"
        log.info("execution already exists", extra={"taskId": task_id, "executionArn": execution_arn})
        return execution_arn
    log.info("execution started", extra={"taskId": task_id, "executionArn": response["executionArn"]})
    return response["executionArn"]
