"""After a restart, the tasks that had not ended go on.

Step Functions executions live in the emulator's memory, so a restarted stack has its tasks back
(`local.persistence`) but none of their executions. For each task that was PENDING, RUNNING,
WAITING or POLLING, the process function is invoked in `restart` mode (`aiwf.restart`): it starts
the task's execution again from the record, the way a redrive does, and a wait is announced again
with a new token. This runs on a thread of its own once the stack serves, so start-up does not
wait for it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from local.persistence import LocalState
from local.registry import Registry

log = logging.getLogger("local.restart")

PROCESS_HANDLER = "aiwf.handlers.orchestrator.process"
# The variable that names the tasks table: from the store's declaration, which infra writes it from.
STORE_SCHEMA = Path(__file__).resolve().parent.parent / "schema" / "state_store.json"
TASKS_TABLE_ENVIRONMENT = json.loads(STORE_SCHEMA.read_text())["tables"]["tasks"]["environment"]
UNFINISHED = frozenset({"PENDING", "RUNNING", "WAITING", "POLLING"})

Invoke = Callable[[str, str], tuple[bytes, str | None]]


def unfinished_tasks(state: LocalState, registry: Registry) -> tuple[str | None, list[str]]:
    """The process function's ARN and the ids of the restored tasks that had not ended (not branch
    records: a task's restart runs its open branches)."""
    process = next((f for f in registry.functions.values() if f.handler == PROCESS_HANDLER), None)
    if process is None:
        return None, []
    items = state.restored_items.get(process.environment.get(TASKS_TABLE_ENVIRONMENT, ""), [])
    ids = [
        item["taskId"]["S"]
        for item in items
        if item.get("status", {}).get("S") in UNFINISHED and "branchOf" not in item and "taskId" in item
    ]
    return process.arn, ids


def restart_unfinished_tasks(state: LocalState, registry: Registry, invoke: Invoke) -> threading.Thread | None:
    """Restart every unfinished task on a background thread (returned, or None when there is none)."""
    function_arn, task_ids = unfinished_tasks(state, registry)
    if function_arn is None or not task_ids:
        return None
    log.info("%d tasks had not ended: restarting their executions", len(task_ids))

    def run() -> None:
        for task_id in task_ids:
            try:
                payload, error = invoke(function_arn, json.dumps({"taskId": task_id, "mode": "restart"}))
            except Exception as exc:  # the stack is stopping, or the function cannot be reached
                log.warning("task %s was not restarted: %s", task_id, exc)
                continue
            if error:
                log.warning("task %s was not restarted: %s", task_id, payload[:500].decode(errors="replace"))

    thread = threading.Thread(target=run, name="local-restart", daemon=True)
    thread.start()
    return thread
