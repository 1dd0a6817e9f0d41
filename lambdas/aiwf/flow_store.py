"""Flow versions in DynamoDB: each registration is a new immutable version; tasks pin one."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .aws import client
from .clock import now_iso
from .settings import get_settings


@dataclass(frozen=True)
class FlowVersion:
    flow_id: str
    version: int
    document: dict[str, Any]
    checksum: str
    created_at: str


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
        if version is not None:
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"flowId": {"S": flow_id}, "version": {"N": str(version)}},
                ConsistentRead=True,
            ).get("Item")
            return _from_item(item) if item else None
        items = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="flowId = :f",
            ExpressionAttributeValues={":f": {"S": flow_id}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        ).get("Items", [])
        return _from_item(items[0]) if items else None

    def register(self, document: dict[str, Any]) -> tuple[FlowVersion, bool]:
        """Store `document` as the next version; re-registering the latest document is a no-op.

        Returns the version and whether it was created. Concurrent registrations each get
        their own version number (the put is conditional on the number being free).
        """
        flow_id = document["id"]
        checksum = _checksum(document)
        for _ in range(10):
            latest = self.get(flow_id)
            if latest and latest.checksum == checksum:
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
            return candidate, True
        raise RuntimeError(f"could not register flow {flow_id}: too many concurrent registrations")
