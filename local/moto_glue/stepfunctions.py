"""Patches of moto's Step Functions engine (moto 5.2.5): AWS's names for heartbeat timeouts, each
definition parsed once, a StopExecution that wins whenever it lands, also over a callback wait, and
Express workflows (StartSyncExecution)."""

from __future__ import annotations

import copy
import datetime
import functools
import json
import time
import uuid
from typing import Any


def name_heartbeat_timeouts() -> None:
    """A missed heartbeat is `States.HeartbeatTimeout` in AWS; moto 5.2.5's engine reports every
    timeout of a callback task as `States.Timeout` (its HeartbeatTimeoutError subclasses TimeoutError,
    which `StateTask._from_error` maps to the timeout event). Name it as AWS does. Idempotent."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = StateTaskServiceCallback._from_error
    if getattr(original, "_aiwf_heartbeat", False):
        return

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, HeartbeatTimeoutError):
            name = StatesErrorNameType.StatesHeartbeatTimeout
            return FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=name),
                event_type=HistoryEventType.TaskTimedOut,
                event_details=EventDetails(taskTimedOutEventDetails=TaskTimedOutEventDetails(error=name.to_name())),
            )
        return original(self, env, ex)

    _from_error._aiwf_heartbeat = True  # type: ignore[attr-defined]
    StateTaskServiceCallback._from_error = _from_error  # type: ignore[method-assign]


ASL_PARSE_CACHE_SIZE = 64


def parse_each_definition_once() -> None:
    """moto's engine parses the state machine's ASL with a pure-Python ANTLR parser at every
    execution start (a third of the embedded AWS's CPU when many tasks start). The parsed program
    keeps per-execution state in the execution's Environment, not in its components, so one parse
    per definition serves every execution of it. Idempotent."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.__dict__["parse"].__func__
    if getattr(original, "_aiwf_cached", False):
        return
    cached = functools.lru_cache(maxsize=ASL_PARSE_CACHE_SIZE)(original)
    cached._aiwf_cached = True  # type: ignore[attr-defined]
    AmazonStateLanguageParser.parse = staticmethod(cached)  # type: ignore[method-assign,assignment]


WAIT_SLICE_SECONDS = 1.0


def a_stop_wins() -> None:
    """StopExecution as AWS applies it, whenever it lands. Idempotent.

    moto 5.2.5 only flags the stop; the engine thread goes on with the state it is in. A Choice cut
    short pops from an empty stack and the error it raises then overwrites the stop (the execution
    ends FAILED with States.Runtime instead of ABORTED): here an error after a stop is ignored. And
    `set_stop` wakes waiters with `Event.set(); Event.clear()`: a Wait that starts waiting right
    after misses it and sleeps its whole length; here waits check the program state every second.
    """
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    if getattr(Environment.set_error, "_aiwf_stop_wins", False):
        return
    original_set_error = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        with self._state_mutex:
            if isinstance(self._program_state, ProgramStopped):
                return
            original_set_error(self, error)

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        deadline = time.monotonic() + wait_seconds
        while env.is_running():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            env.program_state_event.wait(min(left, WAIT_SLICE_SECONDS))

    set_error._aiwf_stop_wins = True  # type: ignore[attr-defined]
    Environment.set_error = set_error  # type: ignore[method-assign]
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]


def a_stop_ends_callback_waits() -> None:
    """StopExecution ends a `.waitForTaskToken` wait at once, as in AWS. Idempotent.

    moto 5.2.5 waits for the callback on an Event that only SendTask* (or the state's end) sets:
    `set_stop` wakes `program_state_event`, which the callback wait never looks at, so a stopped
    execution sat in its callback state until `TimeoutSeconds` (or, with `HeartbeatSeconds`, until
    the next missed heartbeat) and the task's cancel took that long to end the execution. Here both
    waits (plain, and with heartbeats) check the program state every `WAIT_SLICE_SECONDS`; a
    heartbeat still restarts the heartbeat clock, an outcome still ends the wait at once.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackOutcomeTimedOut,
        HeartbeatTimedOut,
    )

    original = StateTaskServiceCallback._eval_wait_for_task_token
    if getattr(original, "_aiwf_stop_ends_wait", False):
        return

    def _wait_plain(env: Any, timeout_seconds: float, endpoint: Any) -> Any:
        deadline = time.monotonic() + timeout_seconds
        while env.is_running():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            outcome = endpoint.wait(timeout=min(left, WAIT_SLICE_SECONDS))
            if outcome is not None:
                return outcome
        return None

    def _wait_with_heartbeats(env: Any, endpoint: Any, heartbeat: Any) -> Any:
        heartbeat_seconds = heartbeat._heartbeat_seconds
        beat = heartbeat._next_heartbeat_event
        deadline = time.monotonic() + heartbeat_seconds
        while env.is_running():
            outcome = endpoint.get_outcome()
            if outcome is not None:
                return outcome
            with heartbeat._mutex:
                if beat.is_set():  # a heartbeat (or the outcome, checked above next round)
                    beat.clear()
                    deadline = time.monotonic() + heartbeat_seconds
                    continue
            left = deadline - time.monotonic()
            if left <= 0:
                return endpoint.get_outcome() or HeartbeatTimedOut()
            beat.wait(timeout=min(left, WAIT_SLICE_SECONDS))
        return None

    def _eval_wait_for_task_token(
        self: Any, env: Any, timeout_seconds: int, callback_endpoint: Any, heartbeat_endpoint: Any
    ) -> Any:
        if heartbeat_endpoint is not None:
            outcome = _wait_with_heartbeats(env, callback_endpoint, heartbeat_endpoint)
        else:
            outcome = _wait_plain(env, timeout_seconds, callback_endpoint)
        return outcome if outcome is not None else CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)

    _eval_wait_for_task_token._aiwf_stop_ends_wait = True  # type: ignore[attr-defined]
    StateTaskServiceCallback._eval_wait_for_task_token = _eval_wait_for_task_token  # type: ignore[method-assign]


# Resources an Express state machine may not use (AWS refuses them at CreateStateMachine).
EXPRESS_REFUSED_SUFFIXES = (".sync", ".sync:2", ".waitForTaskToken")


def express_workflows() -> None:
    """StartSyncExecution, and Express definitions checked as AWS checks them. Idempotent.

    moto 5.2.5 records a state machine's `type` but has no StartSyncExecution; its engine (ported
    from LocalStack) has the SyncExecution that runs an execution to its end in the calling thread,
    only the API is missing. Here the API runs one: the answer carries `status`, `output`, `error`
    and `cause` as AWS's does, the execution ARN is `...:express:<machine>:<name>:<uuid>`, and the
    execution is not kept (Express executions have no DescribeExecution, history or stop). A
    Standard machine answers StateMachineTypeNotSupported, and an Express definition with a
    `.sync` or `.waitForTaskToken` resource is refused at creation, as in AWS.
    """
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.exceptions import InvalidExecutionInput
    from moto.stepfunctions.parser.api import StateMachineType
    from moto.stepfunctions.parser.backend.execution import SyncExecution

    class InvalidDefinition(AWSError):
        TYPE = "InvalidDefinition"
        STATUS = 400

    class StateMachineTypeNotSupported(AWSError):
        TYPE = "StateMachineTypeNotSupported"
        STATUS = 400

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    if getattr(StepFunctionsParserBackend, "_aiwf_express", False):
        return
    original_create = StepFunctionsParserBackend.create_state_machine

    def create_state_machine(self: Any, name: str, definition: str, roleArn: str, *args: Any, **kwargs: Any) -> Any:
        if (kwargs.get("sm_type") or "STANDARD") == "EXPRESS":
            refused = sorted(
                resource
                for resource in _resources(json.loads(definition))
                if resource.endswith(EXPRESS_REFUSED_SUFFIXES)
            )
            if refused:
                raise InvalidDefinition(
                    "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: Express state machine does not "
                    f"support '.sync' or '.waitForTaskToken' service integrations: {', '.join(refused)}'"
                )
        return original_create(self, name, definition, roleArn, *args, **kwargs)

    def start_sync_execution(self: Any, state_machine_arn: str, name: str | None, execution_input: str) -> Any:
        state_machine = self.describe_state_machine(state_machine_arn)
        if state_machine.type != "EXPRESS":
            raise StateMachineTypeNotSupported("This operation is not supported by this type of state machine")
        try:
            json.loads(execution_input)
        except ValueError as exc:
            raise InvalidExecutionInput(str(exc)) from None
        clone = copy.deepcopy(
            state_machine, {id(state_machine.executions): [], id(state_machine.backend): state_machine.backend}
        )
        name = name or str(uuid.uuid4())
        arn = state_machine.arn.replace(":stateMachine:", ":express:", 1) + f":{name}:{uuid.uuid4()}"
        execution = SyncExecution(
            name=name,
            sm_type=StateMachineType.EXPRESS,
            role_arn=clone.roleArn,
            exec_arn=arn,
            account_id=self.account_id,
            region_name=self.region_name,
            state_machine=clone,
            start_date=datetime.datetime.now(tz=datetime.UTC),
            cloud_watch_logging_session=None,
            input_data=execution_input,
            trace_header=None,
            activity_store={},
        )
        execution.start()  # the SyncExecutionWorker runs the program here, to its end
        return execution.to_start_sync_execution_output()

    def start_sync_execution_action(self: Any) -> Any:
        from moto.core.responses import ActionResult

        output = self.stepfunction_backend.start_sync_execution(
            self._get_param("stateMachineArn"), self._get_param("name"), self._get_param("input", if_none="{}")
        )
        return ActionResult(dict(output))

    StepFunctionsParserBackend.create_state_machine = create_state_machine  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_sync_execution = start_sync_execution  # type: ignore[attr-defined]
    StepFunctionResponse.start_sync_execution = start_sync_execution_action  # type: ignore[attr-defined]
    StepFunctionsParserBackend._aiwf_express = True  # type: ignore[attr-defined]


def _resources(node: Any) -> list[str]:
    """Every `Resource` of a definition, nested Parallel branches and Map processors included."""
    if isinstance(node, dict):
        found = [node["Resource"]] if isinstance(node.get("Resource"), str) else []
        return found + [resource for value in node.values() for resource in _resources(value)]
    if isinstance(node, list):
        return [resource for value in node for resource in _resources(value)]
    return []
