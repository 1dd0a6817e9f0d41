"""Where an execution of the embedded Step Functions engine is, so a test can act at a known point.

moto's engine (5.2.5) applies StopExecution by flagging the program as stopped while its worker
thread goes on with whatever state it is evaluating; every sub-evaluation after the flag is
skipped, and a state that then pops a value the skipped part should have pushed fails with
`IndexError: pop from empty list` (in a Choice such as Route), which the engine turns into a
FAILED execution instead of ABORTED. The flag also wakes a Wait only if the worker is already
waiting: set just before, the wake-up is lost and the Wait runs to its end. The only place a stop
is applied cleanly is a worker blocked inside a Wait state, so tests stop executions there: the
history says the execution entered the Wait, and the worker thread (moto runs in the test
process) is seen blocked on the Wait's event.
"""

from __future__ import annotations

import sys
import time
from types import FrameType
from typing import Any

# moto's own `_wait_interval`, or the one local/moto_glue.py puts in its place (it wakes every
# second to notice a stop); either blocks on the Wait's event the same way.
WAIT_FUNCTIONS = ("stepfunctions/parser/asl/component/state/wait/wait_function/wait_function.py", "local/moto_glue.py")


def _blocked_in_wait(frame: FrameType | None, execution_arn: str) -> bool:
    """True when this thread's innermost frames are Condition.wait <- Event.wait <- `_wait_interval`
    of `execution_arn`: from then on a StopExecution's notify reaches it (Event.set takes the
    condition's lock, which the waiter holds until it blocks)."""
    chain: list[FrameType] = []
    while frame is not None and len(chain) < 3:
        chain.append(frame)
        frame = frame.f_back
    if len(chain) < 3:
        return False
    condition_wait, event_wait, interval = chain
    if not (condition_wait.f_code.co_name == "wait" and event_wait.f_code.co_name == "wait"):
        return False
    if interval.f_code.co_name != "_wait_interval" or not interval.f_code.co_filename.endswith(WAIT_FUNCTIONS):
        return False
    env = interval.f_locals.get("env")
    try:
        return env.states.context_object.context_object_data["Execution"]["Id"] == execution_arn
    except (AttributeError, KeyError, TypeError):
        return False


def wait_until_parked(sfn: Any, execution_arn: str, state_suffix: str, timeout: float = 60) -> None:
    """Return once `execution_arn` has entered the Wait state named `...state_suffix` and its
    worker thread is blocked in it; fail the test if that does not happen within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]  # (moto ignores reverseOrder)
        last = events[-1] if events else {}
        entered = last.get("type") == "WaitStateEntered" and last["stateEnteredEventDetails"]["name"].endswith(
            state_suffix
        )
        if entered and any(_blocked_in_wait(f, execution_arn) for f in sys._current_frames().values()):
            return
        assert time.monotonic() < deadline, f"{execution_arn} never parked in {state_suffix}: last event {last}"
        time.sleep(0.02)
