"""State-machine Task handlers: ProcessSteps and Finalize (see infra/orchestrator_asl.py).

The process function also serves the native states' small calls, chosen by `mode`:
`registerWait` (the `.waitForTaskToken` Lambda of WaitForEvent) and `pollCheck` (PollCheck), and
`restart`, which the local stack sends after a restart for each task that had not ended.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from ..callbacks import register_wait
from ..protocol import Mode
from ..reconciler import reconcile
from ..restart import restart_task
from ..runner import MAX_STEPS_PER_INVOCATION, finalize_failure, poll_check, process_steps

logger = Logger(service="orchestrator")


@logger.inject_lambda_context(clear_state=True)
def process(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(taskId=event["taskId"])
    mode = event.get("mode", Mode.PROCESS)
    if mode == Mode.REGISTER_WAIT:
        return register_wait(event["taskId"], event["stepId"], event["taskToken"])
    if mode == Mode.RESTART:
        return restart_task(event["taskId"])
    # The state machine carries a count of this execution's rounds (see aiwf.history_handover).
    rounds = int(event.get("rounds") or 0) + 1
    execution_arn = event.get("executionArn")
    if mode == Mode.POLL_CHECK:
        answer = poll_check(event["taskId"], context.get_remaining_time_in_millis, execution_arn, rounds)
    else:
        # `maxSteps` exists for bench/transitions.py's one-step-per-loop comparison layout.
        max_steps = min(int(event.get("maxSteps", MAX_STEPS_PER_INVOCATION)), MAX_STEPS_PER_INVOCATION)
        answer = process_steps(
            event["taskId"],
            context.get_remaining_time_in_millis,
            max_steps,
            execution_arn,
            rounds,
            execution_start_time=event.get("executionStartTime"),  # the Express machine sends it
        )
    return {**answer, "rounds": rounds}


@logger.inject_lambda_context(clear_state=True)
def finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(taskId=event["taskId"])
    return finalize_failure(event["taskId"], event["error"], event.get("executionArn"))


@logger.inject_lambda_context(clear_state=True)
def reconcile_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge: Step Functions execution status changes (FAILED, TIMED_OUT, ABORTED)."""
    return reconcile(event)
