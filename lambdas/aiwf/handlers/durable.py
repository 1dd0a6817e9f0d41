"""The durable orchestrator: one durable execution per task (or redrive), running aiwf.durable_engine.

A Lambda durable function (`durable_config`): Lambda checkpoints each operation and replays this
handler from the start after a wait, a callback or a crash, skipping what completed. The event is
the `{"taskId"}` the task API sent with the asynchronous Invoke that started the execution.
"""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution

from ..durable_engine import EngineFailure, record_execution, run_task
from ..protocol import Action


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    task_id = event["taskId"]
    record_execution(context, task_id)
    answer = run_task(context, task_id)
    if answer["action"] != Action.SUCCEEDED:
        raise EngineFailure(answer.get("error"))  # the execution fails as the state machine's does
    return {"taskId": task_id, "status": "SUCCEEDED"}
