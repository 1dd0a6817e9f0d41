"""Flow versions in DynamoDB: each registration is a new immutable version; tasks pin one.

Beside its versions each flow has one *head* item (at `headVersion` of `schema/state_store.json`):
its latest version number, whether it is retired and when either last changed. Only heads carry
the list attribute, so the sparse index lists every flow once, by flowId, without reading
versions. Versions are never changed by a retirement, so running tasks keep theirs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .aws import client
from .clock import now_iso
from .errors import BadRequest
from .operations import FLOW_ID_PATTERN
from .settings import get_settings, store_schema

_FLOWS = store_schema()["tables"]["flows"]
HEAD_VERSION: int = _FLOWS["headVersion"]
LIST_INDEX: str = next(iter(_FLOWS["indexes"]))
LIST_ATTRIBUTE: str = _FLOWS["allFlowsPartition"]["attribute"]
LIST_KEY: str = _FLOWS["allFlowsPartition"]["value"]
_FLOW_ID = re.compile(FLOW_ID_PATTERN)


@dataclass(frozen=True)
class FlowVersion:
    flow_id: str
    version: int
    document: dict[str, Any]
    checksum: str
    created_at: str


@dataclass(frozen=True)
class FlowHead:
    """What `GET /flows` shows of a flow: its latest version and whether new tasks may start."""

    flow_id: str
    version: int
    retired: bool
    updated_at: str

    def summary(self) -> dict[str, Any]:
        return {"flowId": self.flow_id, "version": self.version, "retired": self.retired, "updatedAt": self.updated_at}


def _head_from_item(item: dict[str, Any]) -> FlowHead:
    return FlowHead(
        flow_id=item["flowId"]["S"],
        version=int(item["latestVersion"]["N"]),
        retired=item.get("retired", {}).get("BOOL", False),
        updated_at=item["updatedAt"]["S"],
    )


def _encode_token(flow_id: str) -> str:
    return base64.urlsafe_b64encode(flow_id.encode()).decode()


def _decode_token(token: str) -> str:
    """The flowId a page ended at; anything else is the caller's mistake, not a 500."""
    try:
        flow_id = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        flow_id = ""
    if not _FLOW_ID.match(flow_id):
        raise BadRequest("nextToken is not a token this API returned", code="INVALID_NEXT_TOKEN")
    return flow_id


def _checksum(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _from_item(item: dict[str, Any]) -> FlowVersion:
    return FlowVersion(
        flow_id=item["flowId"]["S"],
        version=int(item["version"]["N"]),
        document=json.loads(item["document"]["S"]),
        checksum=item["checksum"]["S"],
        created_at=item["createdAt"]["S"],
    )


class FlowStore:
    def __init__(self) -> None:
        self._table = get_settings().flows_table
        self._ddb = client("dynamodb")

    def get(self, flow_id: str, version: int | None = None) -> FlowVersion | None:
        """A flow's latest version, or one version (the number a task pinned)."""
        if version is not None and version <= HEAD_VERSION:
            return None
        if version is not None:
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"flowId": {"S": flow_id}, "version": {"N": str(version)}},
                ConsistentRead=True,
            ).get("Item")
            return _from_item(item) if item else None
        items = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="flowId = :f AND version > :head",
            ExpressionAttributeValues={":f": {"S": flow_id}, ":head": {"N": str(HEAD_VERSION)}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        ).get("Items", [])
        return _from_item(items[0]) if items else None

    def register(self, document: dict[str, Any]) -> tuple[FlowVersion, bool]:
        """Store `document` as the next version; re-registering the latest document adds none.

        Either way the flow is active afterwards (a registration revives a retired flow).
        Returns the version and whether it was created. Concurrent registrations each get
        their own version number (the put is conditional on the number being free).
        """
        flow_id = document["id"]
        checksum = _checksum(document)
        for _ in range(10):
            latest = self.get(flow_id)
            if latest and latest.checksum == checksum:
                head = self._head_item(flow_id)
                if head is None or head.retired or head.version < latest.version:
                    self._activate(flow_id, latest.version)
                return latest, False
            candidate = FlowVersion(
                flow_id=flow_id,
                version=(latest.version + 1) if latest else 1,
                document=document,
                checksum=checksum,
                created_at=now_iso(),
            )
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item={
                        "flowId": {"S": flow_id},
                        "version": {"N": str(candidate.version)},
                        "document": {"S": json.dumps(document, separators=(",", ":"))},
                        "checksum": {"S": checksum},
                        "createdAt": {"S": candidate.created_at},
                    },
                    ConditionExpression="attribute_not_exists(version)",
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue
                raise
            self._activate(flow_id, candidate.version)
            return candidate, True
        raise RuntimeError(f"could not register flow {flow_id}: too many concurrent registrations")

    def deploy(self, document: dict[str, Any]) -> tuple[FlowVersion, str]:
        """Register a flow shipped with the stack, only when it is new or its file changed since the
        stack last registered it: `registered`, `updated` or `unchanged`.

        A redeploy (a restart of the local stack, a `pulumi up`) must not put the shipped document
        back over a newer version someone registered since, nor revive a flow they retired. The head
        remembers the checksum of the document the stack last deployed (`deployedChecksum`); a flow
        that has none yet (deployed before this was recorded) counts as deployed when any of its
        versions is the shipped document.
        """
        flow_id, checksum = document["id"], _checksum(document)
        latest = self.get(flow_id)
        if latest is None:
            flow, _ = self.register(document)
            self._mark_deployed(flow_id, checksum)
            return flow, "registered"
        deployed = self._deployed_checksum(flow_id)
        if deployed == checksum or (deployed is None and self._has_version(flow_id, checksum)):
            self._mark_deployed(flow_id, checksum)
            return latest, "unchanged"
        flow, created = self.register(document)
        self._mark_deployed(flow_id, checksum)
        return flow, "updated" if created else "unchanged"

    def _deployed_checksum(self, flow_id: str) -> str | None:
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"flowId": {"S": flow_id}, "version": {"N": str(HEAD_VERSION)}},
            ProjectionExpression="deployedChecksum",
            ConsistentRead=True,
        ).get("Item")
        return (item or {}).get("deployedChecksum", {}).get("S")

    def _has_version(self, flow_id: str, checksum: str) -> bool:
        pages = self._ddb.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="flowId = :f AND version > :head",
            FilterExpression="checksum = :c",
            ExpressionAttributeValues={
                ":f": {"S": flow_id},
                ":head": {"N": str(HEAD_VERSION)},
                ":c": {"S": checksum},
            },
            ProjectionExpression="version",
            ConsistentRead=True,
        )
        return any(page.get("Items") for page in pages)

    def _mark_deployed(self, flow_id: str, checksum: str) -> None:
        """Only on an existing head (a flow registered before heads existed has none: it is
        recognised by its versions next time)."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"flowId": {"S": flow_id}, "version": {"N": str(HEAD_VERSION)}},
                UpdateExpression="SET deployedChecksum = :c",
                ConditionExpression="attribute_exists(latestVersion)",
                ExpressionAttributeValues={":c": {"S": checksum}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def head(self, flow_id: str) -> FlowHead | None:
        """The flow's head; a flow registered before heads existed reads as active."""
        head = self._head_item(flow_id)
        if head is not None:
            return head
        latest = self.get(flow_id)
        return FlowHead(flow_id, latest.version, False, latest.created_at) if latest else None

    def retire(self, flow_id: str) -> FlowHead | None:
        """Refuse new tasks of the flow (None if it was never registered); retiring twice is harmless."""
        latest = self.get(flow_id)
        if latest is None:
            return None
        item = self._ddb.update_item(
            TableName=self._table,
            Key={"flowId": {"S": flow_id}, "version": {"N": str(HEAD_VERSION)}},
            UpdateExpression="SET #list = :list, latestVersion = if_not_exists(latestVersion, :v), "
            "retired = :true, updatedAt = :now",
            ExpressionAttributeNames={"#list": LIST_ATTRIBUTE},
            ExpressionAttributeValues={
                ":list": {"S": LIST_KEY},
                ":v": {"N": str(latest.version)},
                ":true": {"BOOL": True},
                ":now": {"S": now_iso()},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _head_from_item(item)

    def list_page(self, limit: int, next_token: str | None = None) -> tuple[list[FlowHead], str | None]:
        """One page of flow heads by flowId; the token is the flowId the page ended at."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": "#list = :list",
            "ExpressionAttributeNames": {"#list": LIST_ATTRIBUTE},
            "ExpressionAttributeValues": {":list": {"S": LIST_KEY}},
            "Limit": limit,
        }
        if next_token:
            query["ExclusiveStartKey"] = {
                LIST_ATTRIBUTE: {"S": LIST_KEY},
                "flowId": {"S": _decode_token(next_token)},
                "version": {"N": str(HEAD_VERSION)},
            }
        page = self._ddb.query(**query)
        heads = [_head_from_item(item) for item in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return heads, (_encode_token(last["flowId"]["S"]) if last else None)

    def _head_item(self, flow_id: str) -> FlowHead | None:
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"flowId": {"S": flow_id}, "version": {"N": str(HEAD_VERSION)}},
            ConsistentRead=True,
        ).get("Item")
        return _head_from_item(item) if item else None

    def _activate(self, flow_id: str, version: int) -> None:
        """Point the head at `version` and clear `retired`; a head already at a newer version (a
        concurrent registration) is left to that registration, which activates it too."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"flowId": {"S": flow_id}, "version": {"N": str(HEAD_VERSION)}},
                UpdateExpression="SET #list = :list, latestVersion = :v, retired = :false, updatedAt = :now",
                ConditionExpression="attribute_not_exists(latestVersion) OR latestVersion <= :v",
                ExpressionAttributeNames={"#list": LIST_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":list": {"S": LIST_KEY},
                    ":v": {"N": str(version)},
                    ":false": {"BOOL": False},
                    ":now": {"S": now_iso()},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
