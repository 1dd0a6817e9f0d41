"""The only package that patches moto's internals (moto 5.2.5, pinned in requirements-dev.txt).

Each module patches one service, says why, and is idempotent; `install()` applies them all (the
embedded server calls it at start, `local.moto_server`):
- `server`: HTTP keep-alive (werkzeug closes every connection), the list of moto's own backends
  read once (it was read from disk under a global lock at every request), each service's request
  router built under a lock;
- `dynamodb`: every DynamoDB (and Streams) request under one lock, and `transact_write_items`
  checking every condition before writing anything, instead of deep-copying each table and
  restoring the copy on failure (which undid other threads' commits and made every write cost a
  copy of the table), and a count of in-place `UpdateItem`s per table (for `local.persistence`);
- `stepfunctions`: heartbeat timeouts named as AWS names them, each definition's ASL parsed once
  instead of at every execution, and a StopExecution that wins over the error of the state it cut
  short (and that Wait states and callback waits notice at once), and Express workflows
  (StartSyncExecution; Express definitions checked as AWS checks them);
- `events`: "Step Functions Execution Status Change" events put on the default bus when an
  execution ends, and matching Lambda targets invoked (moto's EventBridge cannot);
- `lambda_durable`: Lambda's durable execution APIs passed to the local durable execution service
  (`local.durable_service`, the durable execution SDK's testing server);
- `cognito`: a user pool's SRP sign-in proves the password, as Cognito's does (moto signed in
  whoever answered the challenge, and named the user so that the console's client could not).

`iam` (every request an embedded server serves authorized against the caller's policies, with the
action names and resource ARNs IAM uses; the Step Functions engine's calls signed as the state
machine's role) is installed by `local.iam_enforcement`, which owns the credentials it needs.

Two stand-ins replace moto methods too but own a whole AWS behaviour, so they live beside the other
stand-ins: `local.lambda_invoke` (every Lambda invocation to the warm workers) and
`local.dynamodb_event_source` (stream records delivered as Lambda's poller delivers them).
"""

from __future__ import annotations

from local.moto_glue import cognito, dynamodb, events, lambda_durable, server, stepfunctions

MOTO_VERSION = "5.2.5"


def install() -> None:
    """Apply every patch of this package (each is idempotent)."""
    stepfunctions.name_heartbeat_timeouts()
    events.publish_execution_status_changes()
    dynamodb.serialize_dynamodb()
    dynamodb.transactions_without_table_copies()
    dynamodb.count_in_place_updates()
    server.list_moto_modules_once()
    stepfunctions.parse_each_definition_once()
    server.routers_built_once()
    stepfunctions.a_stop_wins()
    stepfunctions.a_stop_ends_callback_waits()
    stepfunctions.express_workflows()
    lambda_durable.serve_durable_apis()
    cognito.srp_sign_in()
