"""Parallel branches (aiwf.branches) on moto in process: fork, the branch loop, gather.

A parallel step forks one record per branch (ids from the parent's id, its seq and the branch
id, so a retried fork finds its own records), each record runs the same step loop, and the
parent gathers the outcomes in branch order; `onBranchError` decides whether one failure fails
the step. `drive` (state_machine.py) runs the branches one after another, as a Map of one would.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from aiwf.branches import fork, gather
from aiwf.errors import StepError
from aiwf.protocol import Action, StepStateKind
from aiwf.repository import TaskRepository
from aiwf.runner import process_steps
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)
from tests.unit.lambdas.state_machine import checked, drive, start

pytestmark = pytest.mark.usefixtures("aws_tables")

OK = {
    "startAt": "s",
    "steps": {
        "s": {"type": "transform", "value": "{{ branchId }}!", "resultPath": "r", "next": "e"},
        "e": {"type": "succeed", "outputPath": "r"},
    },
}
BAD = {"startAt": "s", "steps": {"s": {"type": "fail", "error": "BranchBroke", "cause": "no"}}}


def parallel(on_error: str = "fail", **fan: Any) -> dict[str, Any]:
    fan = fan or {"branches": [{"id": "a", **OK}, {"id": "b", **BAD}, {"id": "c", **OK}]}
    return {
        "id": f"par-{uuid.uuid4().hex[:8]}",
        "startAt": "fan",
        "steps": {
            "fan": {"type": "parallel", "onBranchError": on_error, "resultPath": "fan", "next": "done", **fan},
            "done": {"type": "succeed", "outputPath": "fan"},
        },
    }


def test_a_fork_answers_parallel_with_one_record_per_branch():
    task_id = start(parallel(maxConcurrency=2, branches=[{"id": "a", **OK}, {"id": "b", **OK}]))

    answer = checked(process_steps(task_id, lambda: 60_000))

    assert answer["action"] == Action.PARALLEL and answer["maxConcurrency"] == 2
    seq = TaskRepository().get(task_id).seq - 1  # the seq the fork saw
    assert answer["branches"] == [f"{task_id}~{seq}~a", f"{task_id}~{seq}~b"]
    task = TaskRepository().get(task_id)
    assert task.step_state == {"kind": StepStateKind.PARALLEL, "stepId": "fan", "branches": answer["branches"]}
    record = TaskRepository().get(answer["branches"][0])
    assert record.status == "RUNNING" and record.branch_of == {"taskId": task_id, "stepId": "fan", "index": 0}
    assert record.context["branchId"] == "a"


def test_results_come_in_branch_order_and_continue_keeps_the_errors():
    task_id = start(parallel("continue"))

    assert drive(task_id)["action"] == Action.SUCCEEDED

    a, b, c = TaskRepository().get(task_id).output
    assert a == {"branchId": "a", "output": "a!"} and c == {"branchId": "c", "output": "c!"}
    assert b["branchId"] == "b" and b["error"]["errorName"] == "BranchBroke" and b["error"]["branchId"] == "b"


def test_a_branch_error_fails_the_step_by_default_with_the_branch_named():
    task_id = start(parallel("fail"))

    answer = drive(task_id)

    assert answer["action"] == Action.FAILED
    assert answer["error"]["errorName"] == "BranchBroke" and answer["error"]["branchId"] == "b"
    assert answer["error"]["stepId"] == "fan"


def test_for_each_runs_one_branch_per_item_with_the_item_in_its_context():
    branch = {
        "startAt": "s",
        "steps": {
            "s": {"type": "transform", "value": "{{ item * 10 }}", "resultPath": "r", "next": "e"},
            "e": {"type": "succeed", "outputPath": "r"},
        },
    }
    task_id = start(parallel(forEach={"items": "{{ input.xs }}", "branch": branch}), {"xs": [1, 2, 3]})

    drive(task_id)

    assert [r["output"] for r in TaskRepository().get(task_id).output] == [10, 20, 30]


def test_a_retried_fork_finds_its_own_records():
    task_id = start(parallel("continue"))
    task = TaskRepository().get(task_id)
    step = parallel()["steps"]["fan"]
    first = fork(task, "fan", step, task.context)
    assert fork(task, "fan", step, task.context) == first
    assert len({TaskRepository().get(record_id).task_id for record_id in first}) == 3


def test_gather_refuses_a_branch_that_did_not_finish():
    task_id = start(parallel("continue"))
    answer = checked(process_steps(task_id, lambda: 60_000))
    with pytest.raises(StepError) as raised:
        gather(answer["branches"])
    assert raised.value.error_name == "BranchIncomplete"


def test_a_branch_cannot_fork_again():
    """Validation refuses a parallel step inside a branch; the runtime refuses it too."""
    task_id = start(parallel("continue"))
    record_id = checked(process_steps(task_id, lambda: 60_000))["branches"][0]
    branch = TaskRepository().get(record_id)
    with pytest.raises(StepError) as raised:
        fork(branch, "fan", parallel()["steps"]["fan"], branch.context)
    assert raised.value.error_name == "NestedParallel"
