"""Patches of moto's Step Functions engine (moto 5.2.5): AWS's names for heartbeat timeouts, each
definition parsed once, and a StopExecution that wins whenever it lands."""

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
