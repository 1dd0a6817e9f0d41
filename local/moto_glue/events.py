"""Patch joining moto's Step Functions engine to its EventBridge (moto 5.2.5), and EventBridge to Lambda targets."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("local.moto")


def publish_execution_status_changes() -> None:
    """Deliver "Step Functions Execution Status Change" events as AWS does, to the rules that match.

    moto's engine emits no such events, and moto's EventBridge delivers to no Lambda target. When an
    execution ends, this puts the event on the default bus (moto matches the rules' patterns) and
    hands each matching Lambda target the event as an asynchronous invocation. Idempotent.
    """
    from moto.awslambda.models import lambda_backends
    from moto.events.models import Rule, events_backends
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    if getattr(BaseExecutionWorkerCommunication.terminated, "_aiwf_events", False):
        return
    original_terminated = BaseExecutionWorkerCommunication.terminated
    original_send = Rule.send_to_targets

    def terminated(self: Any) -> None:
        original_terminated(self)
        execution = self.execution
        if execution.sm_type == "EXPRESS":
            return  # AWS sends no status change events for Express executions
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": execution.exec_status.value,
            "startDate": int(execution.start_date.timestamp() * 1000),
            "stopDate": int(execution.stop_date.timestamp() * 1000) if execution.stop_date else None,
            "input": json.dumps(execution.input_data),
            "output": None if execution.output is None else json.dumps(execution.output),
            "error": execution.error,
            "cause": execution.cause,
        }
        entry = {
            "Source": "aws.states",
            "DetailType": "Step Functions Execution Status Change",
            "Detail": json.dumps(detail),
            "Resources": [execution.exec_arn],
        }
        try:
            events_backends[execution.account_id][execution.region_name].put_events([entry])
        except Exception:  # an event that cannot be delivered never changes the execution's outcome
            log.exception("execution status event for %s not delivered", execution.exec_arn)

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        functions = [target for target in self.targets if ":lambda:" in target["Arn"]]
        if len(functions) < len(self.targets):  # moto's own targets (logs, SQS, buses...) as before
            every_target, self.targets = self.targets, [t for t in self.targets if t not in functions]
            try:
                original_send(self, original_event, transform_input)
            finally:
                self.targets = every_target
        if not functions or not self.event_pattern.matches_event(original_event):
            return
        backend = lambda_backends[self.account_id][self.region_name]
        for target in functions:
            function = backend.get_function(target["Arn"])
            function.invoke(json.dumps(original_event, default=str), {"X-Amz-Invocation-Type": "Event"}, {})

    terminated._aiwf_events = True  # type: ignore[attr-defined]
    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
