"""Starting tasks: record first, then start the execution named after the task.

The task id derives from the idempotency `name`, so a repeated request finds the same record,
and the execution name is the task id, so Step Functions itself refuses a second execution.
A start that failed half-way (record written, execution not started) is completed by a retry.

A quick run (`POST /tasks` with `"wait": N`) answers with the state the task has when it ends or
N seconds pass. A flow that may take the Express machine (aiwf.express) runs there with
StartSyncExecution, which returns when the run ends; any other runs on its engine (aiwf.engines)
and the API watches its record. Either way the answer is read from the task's record, the one truth.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .clock import now_iso
from .engines import engine_to_start
from .errors import Conflict, NotFound
from .flow_store import FlowStore
from .repository import DEFAULT_TENANT, FINAL_STATUSES, Task, TaskRepository

_NAME_NAMESPACE = uuid.UUID("6f1f8a57-4d0b-4b8e-9a55-2a3c9d8f0e11")
# A quick run's watch of the task record: first look soon, then back off to one read a second.
_FIRST_PAUSE = 0.1
_LONGEST_PAUSE = 1.0


def task_id_for(name: str | None, tenant_id: str = DEFAULT_TENANT) -> str:
    """The task id of an idempotency `name` within its tenant (two tenants' same name: two tasks).

    The default tenant keeps the ids names had before tenants existed; any other tenant names in
    a namespace of its own, so no choice of name in one tenant reaches another's id."""
    if not name:
        return str(uuid.uuid4())
    namespace = _NAME_NAMESPACE if tenant_id == DEFAULT_TENANT else uuid.uuid5(_NAME_NAMESPACE, f"tenant:{tenant_id}")
    return str(uuid.uuid5(namespace, name))


def start_task(
    flow_id: str,
    task_input: Any,
    name: str | None,
    quick_until: float | None = None,
    tenant_id: str = DEFAULT_TENANT,
) -> tuple[Task, bool]:
    """Create (or find, by name within `tenant_id`) the task and make sure its execution runs;
    True if created now. The task belongs to `tenant_id` for good (the caller's, aiwf.tenancy).

    `quick_until` (a `time.monotonic()` deadline) asks for a quick run: an Express run, where the
    flow allows it, that this call waits for until then."""
    repo = TaskRepository()
    flows = FlowStore()
    task_id = task_id_for(name, tenant_id)
    existing = repo.get(task_id) if name else None
    if existing is None:
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
            tenant_id=tenant_id,
        )
        created = repo.create(task)
        if not created:  # a concurrent request with the same name won the race
            existing = repo.get(task_id)
    if existing is not None:
        _check_same_request(existing, flow_id, task_input)
        task, created = existing, False
    if task.execution_arn is None:
        pinned = flows.get(task.flow_id, task.flow_version)
        task = engine_to_start(pinned.document if pinned else None, quick_until).start(repo, task)
    return task, created


def quick_run(
    flow_id: str, task_input: Any, name: str | None, wait_seconds: int, tenant_id: str = DEFAULT_TENANT
) -> tuple[dict[str, Any], bool]:
    """Start (or find) the task and answer with its stored item once it ends or `wait_seconds` pass."""
    until = time.monotonic() + wait_seconds
    task, created = start_task(flow_id, task_input, name, quick_until=until, tenant_id=tenant_id)
    return wait_for_end(task.task_id, until), created


def wait_for_end(task_id: str, until: float) -> dict[str, Any]:
    """The task's stored item once it is final, or as it is at `until` (a `time.monotonic()` time)."""
    repo = TaskRepository()
    pause = _FIRST_PAUSE
    while True:
        item = repo.get_item(task_id)
        if item is None:
            raise NotFound(f"task {task_id!r} does not exist", code="TASK_NOT_FOUND")
        left = until - time.monotonic()
        if item["status"] in FINAL_STATUSES or left <= 0:
            return item
        time.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_PAUSE)


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
