"""The durable engine: the flow language on a Lambda durable function instead of the state machine.

The Step Functions engine is a loop: ProcessSteps answers an `action` (aiwf.protocol) and the
state machine's Route takes it to a wait, a poll, a retry wait, a Map of branches, or the end.
This module is that same loop written with the durable execution SDK, so it owns no flow
semantics at all: every step runs in `aiwf.runner` against the task repository (the same records,
the same `seq`, the same errors), and this module only maps the actions onto durable operations:

- PROCESS: one checkpointed `step` per committed state change (`runner.process_steps` with
  `max_steps=1`). On a replay the SDK returns the checkpointed answer without running it again,
  and a step interrupted before its checkpoint re-reads the task, which the repository advanced
  only on commit: no flow step runs twice after a replay.
- WAIT: `wait_for_callback`, whose submitter records the callback id on the task
  (`callbacks.register_wait`) the way `registerWait` records a task token; `PUT /tasks/{id}`
  completes it (aiwf.durable_executions). `timeoutSeconds` / `heartbeatSeconds` are the
  callback's timeout and heartbeat timeout.
- POLL: a `wait` of the poll's first interval, then `wait_for_condition`, whose check is one
  PollCheck (`runner.poll_check`) and whose wait strategy is the interval PollCheck answers.
- RETRY: a durable `wait` of the seconds the runner computed from the step's `retry`; the
  runner keeps the attempt count, as with RetryWait.
- PARALLEL: `map` over the branch records, `maxConcurrency` as the map's, each branch running
  this same loop; the next PROCESS gathers them (`onBranchError` is decided there).
- invocation faults (ConcurrentUpdate, a crash): the process step's retry strategy, as the state
  machine's Retry; any other failure outside a step is normalized and recorded like Finalize.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python import DurableContext
from aws_durable_execution_sdk_python.config import (
    Duration,
    MapConfig,
    StepConfig,
    WaitForCallbackConfig,
)
from aws_durable_execution_sdk_python.exceptions import (
    CallbackError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    DurableOperationError,
)
from aws_durable_execution_sdk_python.retries import RetryDecision
from aws_durable_execution_sdk_python.waits import WaitForConditionConfig, WaitForConditionDecision

from .callbacks import register_wait
from .errors import normalized_error
from .protocol import DOCUMENT, INVOCATION_FAULTS, Action
from .repository import TaskRepository
from .runner import finalize_failure, poll_check, process_steps

log = logging.getLogger(__name__)

Answer = dict[str, Any]

# The state machine retries invocation faults 3 times, 2 s apart and doubling (infra/orchestrator_asl.py).
FAULT_RETRIES = 3
FAULT_INTERVAL_SECONDS = 2
# ConcurrentUpdate reaches the retry strategy as the type name the SDK recorded.
_FAULT_TYPES = frozenset(INVOCATION_FAULTS)


class EngineFailure(DurableOperationError):
    """The task ended FAILED (or TIMED_OUT, ABORTED): the durable execution fails with its error.

    The durable execution's status mirrors the Step Functions execution's: FAILED when the task
    did not succeed, with the task's error name and message, and the normalized error as its data.
    The task record, not this exception, is what every API reads."""

    def __init__(self, error: dict[str, Any] | None) -> None:
        error = error or {}
        name = error.get("errorName") or "TaskFailed"
        super().__init__(f"{name}: {error.get('errorMessage') or 'task failed'}", data=json.dumps(error))


def _state(action: str) -> str:
    """The name of the state-machine state an action goes to: the durable operation's name too,
    so a durable execution's history reads like the state machine's."""
    return DOCUMENT["actions"][action]["state"]


def _fault_retry(error: Exception, attempt: int) -> RetryDecision:
    """Retry invocation faults (lost races, crashes) like the state machine's Retry; nothing else."""
    if (
        _error_name(getattr(error, "error_type", None) or type(error).__name__) in _FAULT_TYPES
        and attempt <= FAULT_RETRIES
    ):
        return RetryDecision.retry(Duration.from_seconds(FAULT_INTERVAL_SECONDS * 2 ** (attempt - 1)))
    return RetryDecision.no_retry()


_PROCESS = StepConfig(retry_strategy=_fault_retry)


def _no_time_left() -> int:
    """The remaining-time callback `process_steps` gets: 0, so each call commits one step and the
    durable step's checkpoint follows every committed state change."""
    return 0


def _process(context: DurableContext, task_id: str) -> Answer:
    return context.step(lambda _: process_steps(task_id, _no_time_left, max_steps=1), name=_state(Action.PROCESS))


def record_execution(context: DurableContext, task_id: str) -> None:
    """The execution records itself on its task before the first step, as the API would after the
    Invoke: the asynchronous start may run the first step before the API's own write, and a step
    commits the whole record it read (aiwf.repository), so the execution's ARN must be in it first."""
    arn = context.state.durable_execution_arn

    def record(_: Any) -> None:
        repo = TaskRepository()
        task = repo.get(task_id)
        if task is not None and task.execution_arn != arn:
            repo.set_execution(task, arn)

    context.step(record, name="RecordExecution", config=_PROCESS)


def run_task(context: DurableContext, task_id: str) -> Answer:
    """Run a task (or one parallel branch record) to its end; the answer is SUCCEEDED or FAILED."""
    try:
        answer = _process(context, task_id)
        while answer["action"] not in ENDS:
            route = ROUTES.get(answer["action"])
            if route is None:  # CONTINUED is the state machine's history quota: a durable execution never hands over
                raise DurableOperationError(
                    f"unexpected action {answer['action']!r}", error_type="Orchestrator.UnknownAction"
                )
            answer = route(context, task_id, answer)
        return answer
    except DurableOperationError as exc:
        return _finalize(context, task_id, _normalized(exc))


def _wait_for_event(context: DurableContext, task_id: str, answer: Answer) -> Answer:
    """WaitForEvent: park on a callback until PUT /tasks/{id} completes it, or its timeout."""
    step_id = answer["stepId"]
    config = WaitForCallbackConfig(
        timeout=Duration.from_seconds(int(answer["timeoutSeconds"])),
        heartbeat_timeout=Duration.from_seconds(int(answer.get("heartbeatSeconds") or 0)),
        retry_strategy=_fault_retry,
    )

    def submit(callback_id: str, _: Any) -> None:
        try:
            register_wait(task_id, step_id, callback_id)
        except Exception as exc:  # the error's own name must survive the SDK's wrapping (see _Named)
            raise _Named(exc) from exc

    try:
        context.wait_for_callback(submit, name=_state(Action.WAIT), config=config)
    except CallbackSubmitterError as exc:  # registerWait failed (the notify URL refused): Finalize
        return _finalize(context, task_id, _normalized(exc))
    except CallbackTimeoutError as exc:
        heartbeat = "heartbeat" in (exc.message or "").lower()
        name = "States.HeartbeatTimeout" if heartbeat else "States.Timeout"
        error = normalized_error(name, exc.message or name, retryable=True)
        return _finalize(context, task_id, error)
    except CallbackError as exc:
        # A resume with status FAILED (the callback's failure) left its outcome on the task, as
        # Workflow.ResumedWithFailure does on the state machine: ProcessSteps fails the wait step
        # with the caller's error, so the step's `catch` applies.
        log.info("wait ended by a failure", extra={"taskId": task_id, "stepId": step_id, "error": exc.message})
    return _process(context, task_id)


def _retry_wait(context: DurableContext, task_id: str, answer: Answer) -> Answer:
    """RetryWait: the seconds the runner computed from the step's `retry`, then the step again."""
    context.wait(Duration.from_seconds(max(int(answer["seconds"]), 1)), name=_state(Action.RETRY))
    return _process(context, task_id)


def _poll(context: DurableContext, task_id: str, answer: Answer) -> Answer:
    """PollWait then PollCheck until the poll ends: one durable condition, checked as PollCheck checks."""
    context.wait(Duration.from_seconds(max(int(answer["seconds"]), 1)), name=_state(Action.POLL))

    def check(_state_so_far: Answer, _: Any) -> Answer:
        return poll_check(task_id, _no_time_left)

    def strategy(checked: Answer, _attempts: int) -> WaitForConditionDecision:
        if checked.get("action") == Action.POLL:
            return WaitForConditionDecision.continue_waiting(Duration.from_seconds(max(int(checked["seconds"]), 1)))
        return WaitForConditionDecision.stop_polling()

    config: WaitForConditionConfig[Answer] = WaitForConditionConfig(wait_strategy=strategy, initial_state=answer)
    return context.wait_for_condition(check, config=config, name="PollCheck")


def _branches(context: DurableContext, task_id: str, answer: Answer) -> Answer:
    """Branches: each branch record runs this loop in its own child context, `maxConcurrency` at a
    time (0: all). A branch that fails ends its record FAILED and the map goes on, as the Map does."""
    records: list[str] = answer["branches"]
    concurrency = int(answer.get("maxConcurrency") or 0) or None
    context.map(
        records,
        lambda child, record_id, _index, _all: run_task(child, record_id),
        name=_state(Action.PARALLEL),
        config=MapConfig(max_concurrency=concurrency),
    )
    return _process(context, task_id)  # ProcessSteps gathers the branch records


def _error_name(type_name: str) -> str:
    """An error's name as Lambda reports it: a Python class without its module path
    (`aiwf.errors.ConcurrentUpdate` -> `ConcurrentUpdate`), other names as they are (`Runtime.ExitError`)."""
    module, _, name = type_name.rpartition(".")
    return name if module and module[:1].islower() else type_name


class _Named(DurableOperationError):
    """An error raised in a durable operation with its name and message kept in `data`.

    The SDK records an escaping error by its class; nested operations (the submitter step inside
    wait_for_callback's child context) then re-record the SDK's wrapper class, so the name of the
    original error (NotifyFailed) would be lost. `data` survives every wrapping."""

    def __init__(self, error: Exception) -> None:
        name = _error_name(type(error).__name__)
        super().__init__(str(error) or name, error_type=name, data=json.dumps({"name": name, "message": str(error)}))


def _named(exc: DurableOperationError) -> tuple[str, str] | None:
    try:
        found = json.loads(exc.data or "")
    except ValueError:
        return None
    if isinstance(found, dict) and isinstance(found.get("name"), str):
        return found["name"], str(found.get("message") or found["name"])
    return None


Route = Callable[[DurableContext, str, Answer], Answer]
# What each action of the protocol (schema/orchestrator.json) becomes: the state machine's Route.
ROUTES: dict[str, Route] = {
    Action.PROCESS: lambda context, task_id, _answer: _process(context, task_id),
    Action.WAIT: _wait_for_event,
    Action.POLL: _poll,
    Action.RETRY: _retry_wait,
    Action.PARALLEL: _branches,
}
ENDS = frozenset({Action.SUCCEEDED, Action.FAILED})
# Actions the durable engine has no use for: the Step Functions history quota's handover.
NOT_ROUTED = frozenset({Action.CONTINUED})


def _normalized(exc: DurableOperationError) -> dict[str, Any]:
    """A failure outside any step, in the task's error shape (the state machine's NormalizeError)."""
    name = _error_name(exc.error_type or type(exc).__name__)
    message = exc.message or name
    named = _named(exc)
    if named is not None:
        name, message = named
    return normalized_error(
        name,
        message,
        details={"errorType": name, "errorMessage": message},
        retryable=name in _FAULT_TYPES,
    )


def _finalize(context: DurableContext, task_id: str, error: dict[str, Any]) -> Answer:
    """Finalize: record the normalized error on the task (nothing if it ended already)."""
    return context.step(lambda _: finalize_failure(task_id, error), name="Finalize", config=_PROCESS)
