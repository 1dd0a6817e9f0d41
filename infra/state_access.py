"""The state store's names and access profiles as plain data (no Pulumi resources).

Names come from `schema/state_store.json`, which the runtime (`lambdas/aiwf/settings.py`) reads
too, so infra and `lambdas` agree without importing each other. A profile is what one kind of
use of the store really calls; `StateStore.access` turns profiles into a function's environment
and statements, and the infra tests compare each function's policy with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from .config import StageConfig
from .packaging import REPO_ROOT

STORE_SCHEMA_PATH = REPO_ROOT / "schema" / "state_store.json"

# What a grant may name: a table, a table's indexes, the tasks table's streams, the payload
# objects, or "*" for the one action IAM scopes to no resource (dynamodb:ListStreams).
TASKS, TASK_INDEXES, TASK_STREAMS, HISTORY, FLOWS, FLOW_INDEXES, PAYLOAD_OBJECTS, ANY = (
    "tasks",
    "tasks/index",
    "tasks/stream",
    "history",
    "flows",
    "flows/index",
    "payloads",
    "*",
)


@dataclass(frozen=True)
class Grant:
    """One statement of a profile: actions on store resources (the kinds above)."""

    sid: str
    actions: tuple[str, ...]
    on: tuple[str, ...]


# Each profile is what one kind of use really calls, nothing more (least privilege). A task
# change is one TransactWriteItems of two Puts (tasks, history), read back with GetItem first.
PROFILES: dict[str, tuple[Grant, ...]] = {
    # answers: a task, a list page (newest first over an index), a history page
    "read": (
        Grant("StoreReadTasks", ("dynamodb:GetItem", "dynamodb:Query"), (TASKS, TASK_INDEXES)),
        Grant("StoreReadHistory", ("dynamodb:Query",), (HISTORY,)),
    ),
    # conditional task changes with their history record
    "write-tasks": (
        Grant("StoreWriteTasks", ("dynamodb:GetItem", "dynamodb:PutItem"), (TASKS,)),
        Grant("StoreWriteHistory", ("dynamodb:PutItem",), (HISTORY,)),
    ),
    # the execution ARN recorded on a task (no state change, so an UpdateItem)
    "record-execution": (Grant("StoreRecordExecution", ("dynamodb:UpdateItem",), (TASKS,)),),
    # the flow version a task pinned, or a flow's latest
    "read-flows": (Grant("StoreReadFlows", ("dynamodb:GetItem", "dynamodb:Query"), (FLOWS,)),),
    # a new version of a flow (conditional put after reading the latest) and its head item
    # (latest version, retired), which a registration and a retirement update
    "register-flows": (
        Grant(
            "StoreRegisterFlows",
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"),
            (FLOWS,),
        ),
    ),
    # a page of flow heads, over the flows table's list index
    "list-flows": (Grant("StoreListFlows", ("dynamodb:Query",), (FLOW_INDEXES,)),),
    # Lambda's poller of the tasks stream (the outbox), for the function it feeds
    "read-stream": (
        Grant(
            "StoreReadStream",
            ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
            (TASK_STREAMS,),
        ),
        Grant("StoreListStreams", ("dynamodb:ListStreams",), (ANY,)),
    ),
    # a dead-lettered batch read again: from the stream, else the history of its time window and
    # the parent of a branch's record
    "replay": (
        Grant("StoreReplayStream", ("dynamodb:GetRecords", "dynamodb:GetShardIterator"), (TASK_STREAMS,)),
        Grant("StoreReplayHistory", ("dynamodb:Scan",), (HISTORY,)),
        Grant("StoreBranchParents", ("dynamodb:GetItem",), (TASKS,)),
    ),
    # claim-checked values: read them (answers, published states) or also write them (task changes)
    "payloads-read": (Grant("StoreReadPayloads", ("s3:GetObject",), (PAYLOAD_OBJECTS,)),),
    "payloads-write": (Grant("StoreWritePayloads", ("s3:GetObject", "s3:PutObject"), (PAYLOAD_OBJECTS,)),),
}


@cache
def store_schema() -> dict[str, Any]:
    """`schema/state_store.json`, the names both sides read."""
    return json.loads(STORE_SCHEMA_PATH.read_text())


def table_environment(config: StageConfig) -> dict[str, str]:
    """`{variable: physical table name}` for every table: what tools outside the program (bench,
    scripts) set to run the repository against a stage's tables."""
    return {table["environment"]: config.name(name) for name, table in store_schema()["tables"].items()}


def profile_environment(profile: str) -> tuple[str, ...]:
    """The variables a function granted `profile` gets: the names of exactly what it may touch."""
    schema = store_schema()
    tables = schema["tables"]
    names: list[str] = []
    for grant in PROFILES[profile]:
        for kind in grant.on:
            table = kind.split("/")[0]
            if kind in (TASKS, TASK_INDEXES, HISTORY, FLOWS, FLOW_INDEXES):
                names.append(tables[table]["environment"])
            elif kind == PAYLOAD_OBJECTS:
                names.append(schema["payloads"]["environment"])
                if "s3:PutObject" in grant.actions:  # a writer decides inline or claim check
                    names.append(schema["payloads"]["thresholdEnvironment"])
    return tuple(dict.fromkeys(names))
