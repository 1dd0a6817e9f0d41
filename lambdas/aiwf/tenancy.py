"""The tenant rules of tasks, in one place for both APIs: who sees a task, whose tasks a list
shows, and in which tenant a start lands.

A caller other than an operator never learns that another tenant's task exists: reading or
changing one is exactly what it would be for a task id nobody has (404 `TASK_NOT_FOUND` on
REST and in a GraphQL mutation, null or empty in a GraphQL query). A task's tenant never
changes after its start, so checking it before an operation cannot race the operation.
"""

from __future__ import annotations

from typing import Any

from .callers import Caller
from .errors import Forbidden, NotFound
from .repository import TaskRepository, tenant_of


def visible_item(caller: Caller, task_id: str, repo: TaskRepository | None = None) -> dict[str, Any] | None:
    """The stored task item if it exists and `caller` may see it, else None."""
    item = (repo or TaskRepository()).get_item(task_id)
    if item is None or not caller.sees(tenant_of(item)):
        return None
    return item


def require_task(caller: Caller, task_id: str, repo: TaskRepository | None = None) -> dict[str, Any]:
    """The stored task item `caller` may act on, or 404 `TASK_NOT_FOUND` (absent or another tenant's)."""
    item = visible_item(caller, task_id, repo)
    if item is None:
        raise NotFound(f"task {task_id!r} does not exist", code="TASK_NOT_FOUND")
    return item


def list_tenant(caller: Caller, requested: str | None = None) -> str | None:
    """The tenant a listing shows: the caller's own (naming another is FORBIDDEN); an operator's
    choice, or every tenant (None)."""
    if caller.is_operator:
        return requested or None
    if requested is not None and requested != caller.tenant:
        raise Forbidden(f"a {caller.kind} caller lists its own tenant's tasks only", code="FORBIDDEN")
    return caller.tenant


def start_tenant(caller: Caller, requested: str | None = None) -> str:
    """The tenant a task `caller` starts belongs to (an operator may name one; FORBIDDEN for others
    naming a tenant not their own)."""
    return caller.tenant_for_start(requested)
