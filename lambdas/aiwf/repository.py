"""DynamoDB state repository: the source of truth for tasks, their history and flow versions.

Every task change is one transaction: a Put of the task conditional on the `seq` we read, and a
Put of the history record for the new `seq`. Two writers can never both win, `seq` grows by one
per change, and the tasks table's stream (the outbox) sees each change exactly once.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from . import payloads
from .aws import client
from .clock import now_iso
from .errors import BadRequest, ConcurrentUpdate
from .settings import get_settings, store_schema

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
_TASKS = store_schema()["tables"]["tasks"]
# Every task carries this partition so one index lists them all, newest first.
LIST_ATTRIBUTE = _TASKS["allTasksPartition"]["attribute"]
LIST_KEY = _TASKS["allTasksPartition"]["value"]
# The index to list by each filter attribute (its partition key), and the sort key they share.
INDEX_ON = {index["partitionKey"]: name for name, index in _TASKS["indexes"].items()}
# The attribute a wait's id is stored (and indexed) under: `POST /callbacks/{waitId}` finds its task.
WAIT_ATTRIBUTE = _TASKS["waitIndex"]["attribute"]
(SORT_KEY,) = {index["sortKey"] for index in _TASKS["indexes"].values()}
PAYLOAD_KEY_PREFIX = store_schema()["payloads"]["keyPrefix"]
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# A task written before tasks had tenants belongs to this one.
DEFAULT_TENANT = "default"
# The tenant-scoped list keys (schema/state_store.json `byTenant*`): `<tenant>#<status>`, `<tenant>#<flowId>`.
TENANT_KEY, TENANT_STATUS_KEY, TENANT_FLOW_KEY = "tenantId", "tenantStatus", "tenantFlow"


def tenant_of(item: dict[str, Any]) -> str:
    """The tenant of a stored task or history item (an old record without one is `default`)."""
    return item.get(TENANT_KEY) or DEFAULT_TENANT


@dataclass(frozen=True)
class Task:
    """One task as stored; `context` is the working data the flow's steps read and write."""

    task_id: str
    flow_id: str
    flow_version: int
    status: str
    seq: int
    started_at: str
    updated_at: str
    context: dict[str, Any] = field(default_factory=dict)
    current_step: str | None = None
    branch_id: str | None = None
    waiting_for: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    name: str | None = None
    execution_arn: str | None = None
    # Private to the backend, never in `state()` or the history: the sha256 of the resume token a
    # wait handed out (resume_tokens.py), and what a native step (wait, poll) left for ProcessSteps.
    resume_token_hash: str | None = None
    # The current (or last) wait's id, by which `POST /callbacks/{waitId}` finds the task (an index).
    wait_id: str | None = None
    # Private: the engine's own handle on the wait (a Step Functions task token, a durable callback
    # id), with which a resume or heartbeat completes it; never handed out.
    engine_token: str | None = None
    # Private: the hash of a token a wait held before it was announced again with a new one (the
    # local stack restarted under it, see restart.py), so that token is told why it no longer works.
    replaced_token_hash: str | None = None
    step_state: dict[str, Any] | None = None
    # A parallel branch's record: {taskId: the parent task, stepId: the parallel step, index}.
    branch_of: dict[str, Any] | None = None
    # Token usage of llm steps: {stepId: {provider, model, calls, inputTokens, outputTokens}}.
    llm_usage: dict[str, Any] | None = None
    # Private: steps the task ran so far, the count `maxSteps` bounds (runtime_limits.py); kept
    # on the task item only, so continuations and redrives go on counting where it stopped.
    steps_run: int = 0
    # Public: how many times the task was redriven (control.redrive_task). Private: when the last
    # redrive was, from which the flow's `timeoutSeconds` counts again.
    redrive_count: int = 0
    redriven_at: str | None = None
    # Public: the tenant the task belongs to, set at start from its caller and never changed
    # (branch records carry their task's); who may see it follows from it (aiwf.tenancy).
    tenant_id: str = DEFAULT_TENANT

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def state(self) -> dict[str, Any]:
        """The public WorkflowState view (the GraphQL `WorkflowState`): no context, no tokens."""
        return {
            "taskId": self.branch_of["taskId"] if self.branch_of else self.task_id,
            "flowId": self.flow_id,
            "flowVersion": self.flow_version,
            "status": self.status,
            "seq": self.seq,
            "currentStep": self.current_step,
            "branchId": self.branch_id,
            "waitingFor": self.waiting_for,
            "output": self.output,
            "error": self.error,
            "startedAt": self.started_at,
            "updatedAt": self.updated_at,
            "redriveCount": self.redrive_count,
            "tenantId": self.tenant_id,
        }


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; our numeric attributes are all integers."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if type(value).__name__ == "Decimal":
        return int(value)
    return value


def _deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return _plain({key: _DESERIALIZER.deserialize(value) for key, value in item.items()})


def item_from_image(image: dict[str, Any]) -> dict[str, Any]:
    """A stream record's image (DynamoDB JSON) as the stored item the answers are built from."""
    return _deserialize(image)


def _serialize(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _SERIALIZER.serialize(value) for key, value in values.items() if value is not None}


def _task_from_item(item: dict[str, Any]) -> Task:
    return Task(
        task_id=item["taskId"],
        flow_id=item["flowId"],
        flow_version=item["flowVersion"],
        status=item["status"],
        seq=item["seq"],
        started_at=item["startedAt"],
        updated_at=item["updatedAt"],
        context=payloads.decode(item, "context", {}),
        current_step=item.get("currentStep"),
        branch_id=item.get("branchId"),
        waiting_for=payloads.decode(item, "waitingFor"),
        output=payloads.decode(item, "output"),
        error=payloads.decode(item, "error"),
        name=item.get("name"),
        execution_arn=item.get("executionArn"),
        resume_token_hash=item.get("resumeTokenHash"),
        wait_id=item.get(WAIT_ATTRIBUTE),
        engine_token=item.get("engineToken"),
        replaced_token_hash=item.get("replacedTokenHash"),
        step_state=payloads.decode(item, "stepState"),
        branch_of=json.loads(item["branchOf"]) if "branchOf" in item else None,
        llm_usage=json.loads(item["llmUsage"]) if "llmUsage" in item else None,
        steps_run=item.get("stepsRun", 0),
        redrive_count=item.get("redriveCount", 0),
        redriven_at=item.get("redrivenAt"),
        tenant_id=tenant_of(item),
    )


def _list_key(status: str | None, flow_id: str | None, tenant_id: str | None) -> tuple[str, str]:
    """The index partition (attribute, value) that narrows a listing most; a flow and a status
    together take the flow's and filter on the status."""
    if tenant_id is not None:
        if flow_id:
            return TENANT_FLOW_KEY, f"{tenant_id}#{flow_id}"
        if status:
            return TENANT_STATUS_KEY, f"{tenant_id}#{status}"
        return TENANT_KEY, tenant_id
    if flow_id:
        return "flowId", flow_id
    if status:
        return "status", status
    return LIST_ATTRIBUTE, LIST_KEY


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_token(token: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("nextToken is not a token this API returned", code="INVALID_NEXT_TOKEN") from exc
    if not isinstance(key, dict):
        raise BadRequest("nextToken is not a token this API returned", code="INVALID_NEXT_TOKEN")
    return key


class TaskRepository:
    """Reads and conditional writes of tasks and their history."""

    def __init__(self) -> None:
        settings = get_settings()
        self._tasks = settings.tasks_table
        self._history = settings.history_table
        self._ddb = client("dynamodb")

    # -- writes ---------------------------------------------------------------------------
    def _items(self, task: Task) -> tuple[dict[str, Any], dict[str, Any]]:
        prefix = f"{PAYLOAD_KEY_PREFIX}{task.task_id}/{task.seq}"
        shared = {
            "taskId": task.task_id,
            "flowId": task.flow_id,
            "flowVersion": task.flow_version,
            "status": task.status,
            "seq": task.seq,
            "currentStep": task.current_step,
            "branchId": task.branch_id,
            "startedAt": task.started_at,
            "updatedAt": task.updated_at,
            "redriveCount": task.redrive_count or None,
            TENANT_KEY: task.tenant_id,
        }
        values = _serialize(shared)
        for attribute, value in (
            ("output", task.output),
            ("error", task.error),
            ("waitingFor", task.waiting_for),
        ):
            if value is not None:
                values |= payloads.encode(attribute, value, key_prefix=prefix)
        task_item = (
            values
            | _serialize(
                {
                    "name": task.name,
                    "executionArn": task.execution_arn,
                    "resumeTokenHash": task.resume_token_hash,
                    WAIT_ATTRIBUTE: task.wait_id,
                    "engineToken": task.engine_token,
                    "replacedTokenHash": task.replaced_token_hash,
                    "branchOf": json.dumps(task.branch_of) if task.branch_of else None,
                    "llmUsage": json.dumps(task.llm_usage) if task.llm_usage else None,
                    "stepsRun": task.steps_run,
                    "redrivenAt": task.redriven_at,
                    LIST_ATTRIBUTE: LIST_KEY,
                    SORT_KEY: f"{task.started_at}#{task.task_id}",
                    TENANT_STATUS_KEY: f"{task.tenant_id}#{task.status}",
                    TENANT_FLOW_KEY: f"{task.tenant_id}#{task.flow_id}",
                }
            )
            | payloads.encode("context", task.context, key_prefix=prefix)
        )
        if task.step_state is not None:
            task_item |= payloads.encode("stepState", task.step_state, key_prefix=prefix)
        return task_item, values

    def _commit(self, task: Task, task_condition: dict[str, Any]) -> bool:
        """One transaction: the task item under `task_condition`, and the history record of its seq
        (which must not exist yet). False if a condition failed: someone else wrote first."""
        task_item, history_item = self._items(task)
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._tasks, "Item": task_item, **task_condition}},
                    {
                        "Put": {
                            "TableName": self._history,
                            "Item": history_item,
                            "ConditionExpression": "attribute_not_exists(taskId)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    def create(self, task: Task) -> bool:
        """Write a new task (seq 1) and its first history record; False if the id exists already."""
        return self._commit(task, {"ConditionExpression": "attribute_not_exists(taskId)"})

    def save(self, previous: Task, *, expect_token_hash: str | None = None, **changes: Any) -> Task:
        """Commit a change of `previous` as seq + 1; raises ConcurrentUpdate if someone else won.

        `expect_token_hash` also requires the stored resume-token hash, so consuming a token is
        one atomic write: two resumes with the same token cannot both succeed.
        """
        task = replace(previous, seq=previous.seq + 1, updated_at=now_iso(), **changes)
        condition = "#seq = :previous"
        names = {"#seq": "seq"}
        values: dict[str, Any] = {":previous": {"N": str(previous.seq)}}
        if expect_token_hash is not None:
            condition += " AND #hash = :hash"
            names["#hash"] = "resumeTokenHash"
            values[":hash"] = {"S": expect_token_hash}
        committed = self._commit(
            task,
            {"ConditionExpression": condition, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values},
        )
        if not committed:
            raise ConcurrentUpdate(f"task {previous.task_id} changed after seq {previous.seq}")
        return task

    def reserve_execution(self, task: Task, execution_arn: str) -> bool:
        """Record the execution only if the task has none yet: True for the one caller that may
        start it (an Express run has no name check of its own to refuse a second one)."""
        try:
            self._ddb.update_item(
                TableName=self._tasks,
                Key={"taskId": {"S": task.task_id}},
                UpdateExpression="SET executionArn = :arn",
                ConditionExpression="attribute_not_exists(executionArn)",
                ExpressionAttributeValues={":arn": {"S": execution_arn}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def set_execution(self, task: Task, execution_arn: str) -> Task:
        """Record the execution; not a state change, so no seq and no history record."""
        self._ddb.update_item(
            TableName=self._tasks,
            Key={"taskId": {"S": task.task_id}},
            UpdateExpression="SET executionArn = :arn",
            ExpressionAttributeValues={":arn": {"S": execution_arn}},
        )
        return replace(task, execution_arn=execution_arn)

    def replace_resume_token(self, task: Task, hashed: str) -> Task:
        """A wait announced again by a retried invocation (same engine token): only the token's hash
        changes, on the record that still holds that wait. Not a state change: no seq, no history.
        The replaced hash is remembered, so its token is told why it no longer works."""
        try:
            self._ddb.update_item(
                TableName=self._tasks,
                Key={"taskId": {"S": task.task_id}},
                UpdateExpression="SET resumeTokenHash = :new, replacedTokenHash = :old",
                ConditionExpression="#seq = :seq AND engineToken = :engine",
                ExpressionAttributeNames={"#seq": "seq"},
                ExpressionAttributeValues={
                    ":new": {"S": hashed},
                    ":old": {"S": task.resume_token_hash or ""},
                    ":seq": {"N": str(task.seq)},
                    ":engine": {"S": task.engine_token or ""},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"task {task.task_id} changed after seq {task.seq}") from exc
            raise
        return replace(task, resume_token_hash=hashed, replaced_token_hash=task.resume_token_hash)

    # -- reads ----------------------------------------------------------------------------
    def task_id_of_wait(self, wait_id: str) -> str | None:
        """The record (a task, or a parallel branch's) whose current or last wait is `wait_id`,
        over the wait index; None when no record has it. The index is read eventually
        consistently: callers read the record itself (consistently) before deciding anything."""
        page = self._ddb.query(
            TableName=self._tasks,
            IndexName=_TASKS["waitIndex"]["index"],
            KeyConditionExpression="#w = :w",
            ExpressionAttributeNames={"#w": WAIT_ATTRIBUTE},
            ExpressionAttributeValues={":w": {"S": wait_id}},
            ProjectionExpression="taskId",
            Limit=1,
        )
        items = page.get("Items", [])
        return items[0]["taskId"]["S"] if items else None

    def get(self, task_id: str) -> Task | None:
        item = self._ddb.get_item(TableName=self._tasks, Key={"taskId": {"S": task_id}}, ConsistentRead=True)
        return _task_from_item(_deserialize(item["Item"])) if "Item" in item else None

    def get_item(self, task_id: str) -> dict[str, Any] | None:
        """The stored task item (deserialized, claim checks not followed): what answers are built from."""
        item = self._ddb.get_item(TableName=self._tasks, Key={"taskId": {"S": task_id}}, ConsistentRead=True)
        return _deserialize(item["Item"]) if "Item" in item else None

    def list(
        self,
        *,
        status: str | None,
        flow_id: str | None,
        limit: int,
        next_token: str | None,
        tenant_id: str | None = None,
    ) -> tuple[list[Task], str | None]:
        """Newest first. Filters use the index that narrows most; pages are always full when more exist."""
        return self.list_page(
            status=status,
            flow_id=flow_id,
            limit=limit,
            next_token=next_token,
            show=_task_from_item,
            tenant_id=tenant_id,
        )

    def list_page(
        self,
        *,
        status: str | None,
        flow_id: str | None,
        limit: int,
        next_token: str | None,
        show: Callable[[dict[str, Any]], Any],
        admit: Callable[[Any], bool] | None = None,
        tenant_id: str | None = None,
    ) -> tuple[list[Any], str | None]:
        """Newest first, each item as `show` makes it; up to `limit` items, and only while `admit`
        accepts them (a page bounded by its size ends early, its token resuming after the last
        item shown). Pages are full when more exist and `admit` did not stop them.

        `tenant_id` lists one tenant's tasks only (None: every tenant's, for operators), from
        its own indexes, so a tenant's page never reads, let alone filters out, another's tasks."""
        key_name, key_value = _list_key(status, flow_id, tenant_id)
        query: dict[str, Any] = {
            "TableName": self._tasks,
            "IndexName": INDEX_ON[key_name],
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": key_name},
            "ExpressionAttributeValues": {":k": {"S": key_value}},
            "ScanIndexForward": False,
        }
        # Branch records of parallel steps live beside tasks but are not tasks of their own.
        query["FilterExpression"] = "attribute_not_exists(branchOf)"
        if flow_id and status:
            query["FilterExpression"] += " AND #s = :s"
            query["ExpressionAttributeNames"]["#s"] = "status"
            query["ExpressionAttributeValues"][":s"] = {"S": status}
        start_key = _decode_token(next_token) if next_token else None
        shown: list[Any] = []
        last_key: dict[str, Any] = {}
        while len(shown) < limit:
            page_query = dict(query, Limit=limit - len(shown))
            if start_key:
                page_query["ExclusiveStartKey"] = start_key
            page = self._ddb.query(**page_query)
            for raw in page.get("Items", []):
                view = show(_deserialize(raw))
                if admit is not None and not admit(view):
                    return shown, _encode_token(last_key)
                shown.append(view)
                last_key = {name: raw[name] for name in (*_TASKS["key"], key_name, SORT_KEY)}
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                break
        return shown, (_encode_token(start_key) if start_key else None)

    def history(self, task_id: str) -> list[dict[str, Any]]:
        """Every recorded state of a task, in seq order."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "TableName": self._history,
            "KeyConditionExpression": "taskId = :t",
            "ExpressionAttributeValues": {":t": {"S": task_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self._ddb.query(**query)
            items.extend(_deserialize(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [_task_from_item(item).state() for item in items]

    def history_page(
        self,
        task_id: str,
        *,
        after_seq: int | None = None,
        next_token: str | None = None,
        show: Callable[[dict[str, Any]], Any],
        admit: Callable[[Any], bool],
    ) -> tuple[list[Any], str | None]:
        """Recorded states with seq > `after_seq` (or after the page `next_token` ended), in seq
        order, while `admit` accepts them; the token of the rest when it stopped early, else None."""
        if next_token is not None:
            after_seq = _decode_token(next_token).get("afterSeq")
            if not isinstance(after_seq, int):
                raise BadRequest("nextToken is not a token this API returned", code="INVALID_NEXT_TOKEN")
        query: dict[str, Any] = {
            "TableName": self._history,
            "KeyConditionExpression": "taskId = :t",
            "ExpressionAttributeValues": {":t": {"S": task_id}},
            "ConsistentRead": True,
        }
        if after_seq is not None:
            query["KeyConditionExpression"] += " AND seq > :s"
            query["ExpressionAttributeValues"][":s"] = {"N": str(after_seq)}
        shown: list[Any] = []
        last_seq: int | None = None
        while True:
            page = self._ddb.query(**query)
            for raw in page.get("Items", []):
                item = _deserialize(raw)
                view = show(item)
                if not admit(view):
                    return shown, _encode_token({"afterSeq": last_seq if last_seq is not None else after_seq or 0})
                shown.append(view)
                last_seq = item["seq"]
            if "LastEvaluatedKey" not in page:
                return shown, None
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def history_between(self, low: str, high: str) -> list[dict[str, Any]]:
        """Every history item (deserialized) whose `updatedAt` is within [low, high], any task, in
        no order: how a replay finds the changes of a window the stream no longer holds."""
        request: dict[str, Any] = {
            "TableName": self._history,
            "FilterExpression": "updatedAt BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":low": {"S": low}, ":high": {"S": high}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self._ddb.scan(**request)
            items.extend(_deserialize(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def branch_parent(self, task_id: str) -> str | None:
        """The stored `branchOf` (JSON text) of a parallel branch's record, None for a task or no record."""
        found = self._ddb.get_item(
            TableName=self._tasks, Key={"taskId": {"S": task_id}}, ProjectionExpression="branchOf"
        ).get("Item")
        return (found or {}).get("branchOf", {}).get("S")
