"""Tasks table stream -> `updateWorkflowState` (the outbox relay; see infra/state_publisher.py).

Records are published in stream order, and the first one that fails is reported as the batch
item failure: Lambda then retries from it, so a task's changes never overtake each other, and the
records before it are not published twice. The workflow never waits for any of this.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from ..appsync_client import PublishError, call
from ..settings import graphql_url
from ..workflow_state import is_state_change, state_from_image

logger = Logger(service="state-publisher")

MUTATION = """
mutation Publish($input: WorkflowStateInput!) {
  updateWorkflowState(input: $input) {
    taskId flowId flowVersion status seq currentStep branchId waitingFor output
    error { errorName errorMessage errorDetails retryable stepId branchId }
    startedAt updatedAt redriveCount tenantId
  }
}
"""


def publish_state(state: dict[str, Any], url: str) -> None:
    """One `updateWorkflowState` call; the stream handler and the replayer both publish through it."""
    call(url, MUTATION, {"input": {key: value for key, value in state.items() if value is not None}})
    logger.debug("published", extra={"taskId": state["taskId"], "seq": state["seq"], "status": state["status"]})


def publish(record: dict[str, Any], url: str) -> None:
    publish_state(state_from_image(record["dynamodb"]["NewImage"]), url)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    url = graphql_url()
    for record in event.get("Records", []):
        if not is_state_change(record):
            continue
        try:
            publish(record, url)
        except (PublishError, KeyError, ValueError) as exc:
            sequence = record["dynamodb"]["SequenceNumber"]
            logger.warning(
                "publish failed; the stream retries from here", extra={"sequence": sequence, "reason": str(exc)}
            )
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return {"batchItemFailures": []}
