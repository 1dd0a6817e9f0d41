"""Parallel branches: one record per branch beside the task, run by the same step loop.

A `parallel` step forks: it writes a branch record (status RUNNING, the parent's context plus
`branchId` and, for `forEach`, `item`) per branch, and the state machine's Map runs ProcessSteps
on each record id. When the Map is done, ProcessSteps gathers the records' outcomes in branch
order. Record ids derive from the parent's id, its `seq` at the fork and the branch id, so a
retried fork finds its own records and a loop back into the step forks afresh.
"""

from __future__ import annotations

from typing import Any

from .clock import now_iso
from .errors import StepError
from .repository import Task, TaskRepository
from .templates import json_type, render


def branch_definitions(step: dict[str, Any], context: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(branchId, item or None, branch definition) for each branch of a parallel step, in order."""
    if "branches" in step:
        return [(branch["id"], None, branch) for branch in step["branches"]]
    items = render(step["forEach"]["items"], context)
    if not isinstance(items, list):
        raise StepError("InvalidItems", f"forEach.items must render to a list, got {json_type(items)}")
    return [(str(index), item, step["forEach"]["branch"]) for index, item in enumerate(items)]


def branch_steps(document: dict[str, Any], task: Task) -> tuple[dict[str, Any], str]:
    """The steps and startAt a task record runs: the flow's, or its branch's."""
    if task.branch_of is None:
        return document["steps"], document["startAt"]
    step = document["steps"][task.branch_of["stepId"]]
    branch = step["branches"][task.branch_of["index"]] if "branches" in step else step["forEach"]["branch"]
    return branch["steps"], branch["startAt"]


def fork(task: Task, step_id: str, step: dict[str, Any], context: dict[str, Any]) -> list[str]:
    if task.branch_of is not None:
        raise StepError("NestedParallel", "a parallel step cannot run inside a parallel branch")
    repo = TaskRepository()
    record_ids = []
    now = now_iso()
    for index, (branch_id, item, definition) in enumerate(branch_definitions(step, context)):
        record_id = f"{task.task_id}~{task.seq}~{branch_id}"
        branch_context = {**context, "branchId": branch_id}
        if "forEach" in step:
            branch_context["item"] = item
        repo.create(
            Task(
                task_id=record_id,
                flow_id=task.flow_id,
                flow_version=task.flow_version,
                status="RUNNING",
                seq=1,
                started_at=now,
                updated_at=now,
                context=branch_context,
                current_step=definition["startAt"],
                branch_id=branch_id,
                branch_of={"taskId": task.task_id, "stepId": step_id, "index": index},
                tenant_id=task.tenant_id,  # a branch is its task's: it is seen and delivered as the task's
                steps_run=task.steps_run,  # branches share what is left of the task's step budget
            )
        )  # False when a retried fork wrote it already: the record is ours either way
        record_ids.append(record_id)
    return record_ids


def gather(record_ids: list[str], steps_at_fork: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
    """Each branch's `{branchId, output}` or `{branchId, error}` in branch order, the first error, and
    the steps the branches ran (each record started counting at the parent's `steps_at_fork`)."""
    repo = TaskRepository()
    results: list[dict[str, Any]] = []
    first_error = None
    branch_steps_run = 0
    for record_id in record_ids:
        branch = repo.get(record_id)
        if branch is None or not branch.is_final:
            raise StepError("BranchIncomplete", f"branch record {record_id} did not finish")
        branch_steps_run += max(branch.steps_run - steps_at_fork, 0)
        if branch.status == "SUCCEEDED":
            results.append({"branchId": branch.branch_id, "output": branch.output})
            continue
        error = {**(branch.error or {}), "branchId": branch.branch_id}
        results.append({"branchId": branch.branch_id, "error": error})
        first_error = first_error or error
    return results, first_error, branch_steps_run
