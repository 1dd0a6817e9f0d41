"""The task a call is about and the steps it runs: the preamble of every orchestrator call.

ProcessSteps, PollCheck and registerWait each start from a task id: read the task, then the flow
version it is pinned to, then the steps of its part of that flow (the flow's own, or its branch's).
A task or flow version that does not exist is a step error, which the state machine normalizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .branches import branch_steps
from .errors import StepError
from .flow_store import FlowStore
from .repository import Task, TaskRepository


@dataclass(frozen=True)
class TaskFlow:
    """The flow document a task is pinned to, and the steps (and first step) its record runs."""

    document: dict[str, Any]
    steps: dict[str, Any]
    start_at: str


def load_task(repo: TaskRepository, task_id: str) -> Task:
    """The task record `task_id`; StepError TaskNotFound when there is none."""
    task = repo.get(task_id)
    if task is None:
        raise StepError("TaskNotFound", f"task {task_id} does not exist")
    return task


def load_flow(task: Task) -> TaskFlow:
    """The pinned flow version of `task` and its steps; StepError FlowNotFound when it is gone."""
    flow_version = FlowStore().get(task.flow_id, task.flow_version)
    if flow_version is None:
        raise StepError("FlowNotFound", f"flow {task.flow_id} version {task.flow_version} does not exist")
    steps, start_at = branch_steps(flow_version.document, task)
    return TaskFlow(document=flow_version.document, steps=steps, start_at=start_at)
