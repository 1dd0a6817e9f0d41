"""The engines a task runs on, behind one interface: the one place that tells them apart.

A task runs on Step Functions Standard, on the Express machine (a quick run), or as a Lambda
durable execution, and keeps that engine for life: the execution its record names says which
(a durable execution's ARN, an Express reservation or run, a Standard execution, or none yet:
Standard, whose execution is named after the task), whatever its flow's `engine` becomes later.
A new task takes its flow's engine (`engine`, or the stage default) and, for a quick run of a
flow with no waits, the Express machine where the stage deploys one.

Cancel, redrive, restart, resume and heartbeat ask `engine_for(task)`; the task API asks
`engine_to_start(...)`. Each engine's calls stay with their owner (standard_executions, express,
durable_executions); what differs between engines is said here:
- Express runs cannot be stopped: a cancelled quick run ends at its next step boundary;
- a redrive, and a restart, of a quick run go on on Standard;
- durable executions are not restarted (the local stack's restart is for Step Functions'
  executions, which live in the emulator's memory), and Lambda names a durable ARN itself.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from . import durable_executions, express, standard_executions
from .reconciler import reconcile
from .repository import Task, TaskRepository
from .settings import get_settings, standard_execution_arn

log = logging.getLogger(__name__)


class NotRestarted(Exception):
    """The engine does not start this task's execution again; the reason goes to the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class Engine(Protocol):
    """What the control plane does with a task's execution, whichever engine runs it."""

    name: str

    def start(self, repo: TaskRepository, task: Task) -> Task:
        """Start (or find, by name) the new task's execution; the task recording it."""
        ...

    def stop(self, task: Task, message: str) -> None:
        """Stop the execution of a task just committed ABORTED (one that ended is left alone)."""
        ...

    def complete_wait(self, task: Task, token: str, outcome: dict[str, Any]) -> None:
        """Hand the committed resume `outcome` to the engine's wait `token` (the task token or callback
        id the task record keeps, never the resume token handed out); Gone if it is over."""
        ...

    def heartbeat(self, task: Task, token: str) -> None:
        """Restart the heartbeat clock of the engine's wait `token`; Gone if it is over."""
        ...

    def redrive_arn(self, task: Task, count: int) -> str:
        """The execution the task records, before it starts, for its `count`-th redrive."""
        ...

    def redrive(self, task: Task, count: int) -> str:
        """Start the task's `count`-th redrive execution; its ARN."""
        ...

    def restart(self, task: Task) -> str:
        """Start the unfinished task's execution again (its executions are gone); its ARN.
        NotRestarted when this engine does not."""
        ...


class StandardEngine:
    """Step Functions Standard: executions named after the task (standard_executions)."""

    name = "stepfunctions"

    def start(self, repo: TaskRepository, task: Task) -> Task:
        started = standard_executions.start(get_settings().state_machine_arn, task.task_id, task.task_id)
        return repo.set_execution(task, started)

    def stop(self, task: Task, message: str) -> None:
        # No execution recorded yet: the start may be under way (the API records it once
        # StartExecution answers), and its name is the task id, so stop that one if it runs.
        execution_arn = task.execution_arn or standard_execution_arn(task.task_id)
        standard_executions.stop(execution_arn, message, task.task_id)

    def complete_wait(self, task: Task, token: str, outcome: dict[str, Any]) -> None:
        standard_executions.complete_wait(task.task_id, token, outcome)

    def heartbeat(self, task: Task, token: str) -> None:
        standard_executions.heartbeat(task.task_id, token)

    def redrive_arn(self, task: Task, count: int) -> str:
        return standard_execution_arn(_redrive_name(task, count))

    def redrive(self, task: Task, count: int) -> str:
        return standard_executions.start(get_settings().state_machine_arn, _redrive_name(task, count), task.task_id)

    def restart(self, task: Task) -> str:
        if task.execution_arn and ":execution:" in task.execution_arn:
            # `arn:...:execution:<machine>:<name>`: the same machine, the same name
            prefix, _, rest = task.execution_arn.partition(":execution:")
            machine, _, name = rest.partition(":")
            return standard_executions.start(f"{prefix}:stateMachine:{machine}", name, task.task_id)
        # the start never reached Step Functions (the task API names the execution right after)
        return _start_as_standard(task)


@dataclass(frozen=True)
class ExpressEngine(StandardEngine):
    """A quick run on the Express machine (express). Its ProcessSteps hands the task over to a
    Standard execution before it could outlive the Express limits, and everything after the run
    (a resume, a heartbeat, a redrive, a restart) is Standard's, so only start and stop differ."""

    # The quick run's deadline (a `time.monotonic()` time): how long starting it waits for its end.
    until: float = 0.0
    name = "express"

    def start(self, repo: TaskRepository, task: Task) -> Task:
        """Run the task on the Express machine and wait for it until `until`.

        The task records the execution's reservation first, conditionally, so of concurrent or
        retried requests only one starts a run (Express, unlike Standard, does not refuse a name
        twice). StartSyncExecution is sent once with the time left as its read timeout; when that
        passes, the run goes on and the caller gets the state of the moment. If the call fails
        before the run starts, the task runs on Standard.
        """
        machine_arn = get_settings().express_state_machine_arn
        reserved = express.reservation_arn(machine_arn, task.task_id)
        if not repo.reserve_execution(task, reserved):
            log.info("quick run started by a concurrent request", extra={"taskId": task.task_id})
            return task
        task = replace(task, execution_arn=reserved)
        timeout = max(math.ceil(self.until - time.monotonic()), 1)
        try:
            result = express.start_sync(machine_arn, task.task_id, timeout)
        except ReadTimeoutError:
            log.info("quick run goes on past the wait", extra={"taskId": task.task_id})
            return task
        except (ClientError, EndpointConnectionError, ConnectTimeoutError) as exc:  # refused, or never sent
            log.warning(
                "quick run not started: the task runs on Standard", extra={"taskId": task.task_id, "error": str(exc)}
            )
            return StandardEngine().start(repo, task)
        except BotoCoreError as exc:  # the request may have reached AWS: a second run could double steps
            log.error("quick run outcome unknown", extra={"taskId": task.task_id, "error": str(exc)})
            return task
        log.info("quick run ended", extra={"taskId": task.task_id, "status": result["status"]})
        if result["status"] != "SUCCEEDED":  # ended outside any step (no Finalize ran): end the task too
            reconcile({"detail": {**result, "name": task.task_id}})
        return task

    def stop(self, task: Task, message: str) -> None:
        # Express executions cannot be stopped; a quick run's next ProcessSteps finds the task
        # final and ends it (within one inline step or one retry wait).
        log.info("quick run ends at its next step", extra={"taskId": task.task_id})

    def restart(self, task: Task) -> str:
        # a quick run cut off on Express (its ARN names no Standard machine): it goes on as the
        # task's Standard execution
        return _start_as_standard(task)


class DurableEngine:
    """A Lambda durable execution of the durable orchestrator (durable_executions)."""

    name = "durable"

    def start(self, repo: TaskRepository, task: Task) -> Task:
        return repo.set_execution(task, durable_executions.start(task.task_id, task.task_id))

    def stop(self, task: Task, message: str) -> None:
        durable_executions.stop(task.execution_arn or "", message)

    def complete_wait(self, task: Task, token: str, outcome: dict[str, Any]) -> None:
        durable_executions.complete_wait(task.task_id, token, outcome)  # the record's callback id

    def heartbeat(self, task: Task, token: str) -> None:
        durable_executions.heartbeat(task.task_id, token)

    def redrive_arn(self, task: Task, count: int) -> str:
        # A durable execution's ARN is Lambda's to choose: the old one stays until the new one starts.
        return task.execution_arn or ""

    def redrive(self, task: Task, count: int) -> str:
        return durable_executions.start(task.task_id, durable_executions.execution_name(task.task_id, count))

    def restart(self, task: Task) -> str:
        raise NotRestarted("durable executions are not restarted")


def engine_for(task: Task) -> Engine:
    """The engine that runs `task`, told by the execution it records; for a parallel branch's
    record (a wait inside a branch), its task's."""
    return _engine_of_execution(_engine_execution(task))


def engine_to_start(document: dict[str, Any] | None, quick_until: float | None) -> Engine:
    """The engine a new task starts on: `document` is its pinned flow version's, `quick_until`
    the deadline of a quick run (`POST /tasks` with `"wait"`), None for a plain start."""
    if document is not None and durable_executions.engine_of(document) == "durable":
        return DurableEngine()
    quick = quick_until is not None and bool(get_settings().express_state_machine_arn)
    if quick and document is not None and express.runs_on_express(document):
        return ExpressEngine(until=quick_until or 0.0)
    return StandardEngine()


def _engine_of_execution(execution_arn: str | None) -> Engine:
    if durable_executions.is_durable(execution_arn):
        return DurableEngine()
    if express.is_express(execution_arn):
        return ExpressEngine()
    return StandardEngine()


def _engine_execution(task: Task) -> str | None:
    """The execution that runs `task`: its own, or for a parallel branch record, its task's."""
    if task.branch_of is None:
        return task.execution_arn
    parent = TaskRepository().get(task.branch_of["taskId"])
    return parent.execution_arn if parent is not None else None


def _redrive_name(task: Task, count: int) -> str:
    return f"{task.task_id}-r{count}"


def _start_as_standard(task: Task) -> str:
    """The task's Standard execution named after it, on the stage's Standard machine."""
    machine_arn = get_settings().state_machine_arn
    if not machine_arn:
        raise NotRestarted("no execution to start again")
    return standard_executions.start(machine_arn, task.task_id, task.task_id)
