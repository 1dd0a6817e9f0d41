"""Patches of moto's Step Functions engine (moto 5.2.5): AWS's names for heartbeat timeouts, each
definition parsed once, and a StopExecution that wins whenever it lands, also over a callback wait."""

from __future__ import annotations

import functools
import time
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
