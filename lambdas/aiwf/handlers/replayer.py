"""On-failure queue -> `updateWorkflowState` again: state changes the publisher gave up on are
published once the Workflow State API answers (see aiwf/replay.py and infra/state_publisher.py).

An SQS event source mapping hands this function the queue's messages with
`ReportBatchItemFailures`. A message is reported as a failure unless every state of its batch was
published, so it is deleted only then. A failed message is kept invisible for a doubling backoff
(ChangeMessageVisibility from `REPLAY_BACKOFF_SECONDS`, at most `REPLAY_BACKOFF_MAX_SECONDS`):
while the API is down the queue is not hammered, and the queue's redrive policy moves a message
that keeps failing to the final dead-letter queue after `maxReceiveCount` receives. Once a publish
fails, the rest of the batch is not tried in this invocation (the API is down for them too).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from .. import settings
from ..appsync_client import PublishError
from ..aws import client
from ..replay import IncompleteRead, StreamBatch, StreamGone, backoff_seconds, states_of
from .publisher import publish_state

logger = Logger(service="state-replayer")


def _replay(message: dict[str, Any], url: str) -> int:
    batch = StreamBatch.from_message(message["body"])
    states = states_of(batch)
    for state in states:
        publish_state(state, url)
    logger.info(
        "replayed",
        extra={"messageId": message["messageId"], "states": len(states), "start": batch.start, "end": batch.end},
    )
    return len(states)


def _back_off(failed: list[dict[str, Any]]) -> None:
    """Keep each failed message invisible for its backoff; the mapping leaves visibility alone."""
    queue_url = settings.replay_queue_url()
    if not queue_url:
        return
    base, ceiling = settings.replay_backoff_seconds()
    for message in failed:
        receives = int((message.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
        try:
            client("sqs").change_message_visibility(
                QueueUrl=queue_url,
                ReceiptHandle=message["receiptHandle"],
                VisibilityTimeout=backoff_seconds(receives, base, ceiling),
            )
        except (ClientError, BotoCoreError) as exc:  # the queue's own visibility timeout applies instead
            logger.warning("backoff not set", extra={"messageId": message["messageId"], "reason": str(exc)})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    url = settings.graphql_url()
    failed: list[dict[str, Any]] = []
    api_down = False
    for message in event.get("Records", []):
        if api_down:
            failed.append(message)
            continue
        try:
            _replay(message, url)
        except PublishError as exc:
            api_down = True
            failed.append(message)
            logger.warning(
                "the API still fails; replay later", extra={"messageId": message["messageId"], "reason": str(exc)}
            )
        except ValueError as exc:  # not an on-failure record: it ends in the dead-letter queue for a person
            failed.append(message)
            logger.error("unreadable message", extra={"messageId": message["messageId"], "reason": str(exc)})
        except (StreamGone, IncompleteRead, ClientError, BotoCoreError, KeyError) as exc:
            failed.append(message)
            logger.warning(
                "records not read; replay later", extra={"messageId": message["messageId"], "reason": str(exc)}
            )
    _back_off(failed)
    return {"batchItemFailures": [{"itemIdentifier": message["messageId"]} for message in failed]}
