"""History handover: a task whose execution nears the 25,000-event limit goes on in a fresh one.

Step Functions fails an execution whose history reaches 25,000 events. Every
`CONTINUE_CHECK_EVERY_ROUNDS` rounds of the main loop (the state machine counts them in
`$.rounds`), and after every parallel step (a Map adds its branches' events), ProcessSteps asks
for the newest event's id: one GetExecutionHistory call with reverseOrder and maxResults 1; the
id is the number of events so far (the API's low rate limit is why it is not asked every round).
At `CONTINUE_AFTER_EVENTS` it starts a new execution of the same state machine for the same task
(named `<taskId>-c<n>`) and answers CONTINUED, which ends this one. All state is in DynamoDB, so
nothing is lost. (The Lambda starts the execution rather than a `states:startExecution` state:
moto 5.2.5's engine fails that integration with a KeyError, and one Lambda call does it either way.)
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from botocore.exceptions import ClientError

from . import settings
from .aws import client
from .protocol import Action, StepStateKind
from .repository import Task, TaskRepository

log = logging.getLogger(__name__)


def _threshold() -> int:
    return settings.continue_after_events()


def next_execution_name(task_id: str, execution_arn: str) -> str:
    name = execution_arn.rsplit(":", 1)[-1]
    # `<taskId>[-r<redrive>][-c<n>]`: a redrive's execution continues as `<taskId>-r<redrive>-c2`...
    found = re.fullmatch(r"(-r\d+)?(?:-c(\d+))?", name.removeprefix(task_id))
    if found is None:
        return f"{task_id}-c2"
    redrive, count = found.groups()
    return f"{task_id}{redrive or ''}-c{int(count) + 1 if count else 2}"


def _due(task: Task, rounds: int) -> bool:
    every = settings.continue_check_every_rounds()
    after_parallel = bool(task.step_state and task.step_state.get("kind") == StepStateKind.PARALLEL)
    return after_parallel or (rounds > 0 and rounds % max(every, 1) == 0)


def hand_over_if_history_is_long(task: Task, execution_arn: str | None, rounds: int = 0) -> dict[str, Any] | None:
    """CONTINUED (a fresh execution has the task) when this one's history is near the quota, else None."""
    if not execution_arn or ":execution:" not in execution_arn or task.branch_of is not None:
        return None  # Express executions (quick runs) have no history to count: aiwf.express bounds them
    if not _due(task, rounds):
        return None
    events = client("stepfunctions").get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=1)[
        "events"
    ]
    count = max((event["id"] for event in events), default=0)
    if count < _threshold():
        return None
    name = next_execution_name(task.task_id, execution_arn)
    prefix, _, rest = execution_arn.partition(":execution:")
    machine_arn = f"{prefix}:stateMachine:{rest.split(':', 1)[0]}"
    log.info("history near the quota", extra={"taskId": task.task_id, "events": count})
    return continue_in_fresh_execution(task, machine_arn, name)


def continue_in_fresh_execution(task: Task, machine_arn: str, name: str) -> dict[str, Any]:
    """Start execution `name` of `machine_arn` for the task, record it, and answer CONTINUED (which
    ends the calling execution). Idempotent: a retried call finds the execution it started."""
    try:
        started = client("stepfunctions").start_execution(
            stateMachineArn=machine_arn, name=name, input=json.dumps({"taskId": task.task_id, "rounds": 0})
        )["executionArn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":  # a retried round started it already
            raise
        started = machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    TaskRepository().set_execution(task, started)
    log.info("continued in a fresh execution", extra={"taskId": task.task_id, "next": started})
    return {"taskId": task.task_id, "action": Action.CONTINUED, "executionArn": started}
