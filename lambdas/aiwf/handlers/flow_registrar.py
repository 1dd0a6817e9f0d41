"""Deploy-time flow registration (invoked by the program's `aws.lambda_.Invocation`).

Every flow in `flows/` is validated as `PUT /flows/{id}` would validate it, and becomes a version
only when it is new or its file changed since the stack last registered it (`FlowStore.deploy`):
a redeploy never puts a shipped document back over a version someone registered since. An invalid
flow fails the invocation, and so the deployment, with every problem listed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from ..flow_store import FlowStore
from ..flows import validation_errors
from ..limits import flow_limit_error

logger = Logger(service="flow-registrar")


class InvalidFlows(Exception):
    pass


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    documents = event.get("flows") or []
    problems = []
    for document in documents:
        too_big = flow_limit_error(document)
        if too_big is not None:
            problems.append(f"{document.get('id', '?')}: {too_big.code}: {too_big.message}")
            continue
        problems += [
            f"{document.get('id', '?')}{error['path']}: {error['message']}" for error in validation_errors(document)
        ]
    if problems:
        raise InvalidFlows("invalid flow documents:\n" + "\n".join(problems))
    store = FlowStore()
    registered = []
    for document in documents:
        flow, outcome = store.deploy(document)
        registered.append({"flowId": flow.flow_id, "version": flow.version, "outcome": outcome})
        logger.info("flow deployed", extra=registered[-1])
    return {"registered": registered, "summary": summary(registered)}


def summary(registered: list[dict[str, Any]]) -> str:
    """One line for the deploying terminal: which shipped flows became a version, which were left."""
    parts = [
        f"{entry['flowId']} v{entry['version']} {entry['outcome']}"
        if entry["outcome"] != "unchanged"
        else f"{entry['flowId']} unchanged (v{entry['version']} is the latest)"
        for entry in registered
    ]
    return "shipped flows: " + ("; ".join(parts) if parts else "none")
