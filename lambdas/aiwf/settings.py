"""Runtime settings read from the function environment that infra/ sets.

Read lazily so tests and the local stack can point the same code at other tables. The names of
the store's variables, indexes and keys come from `schema/state_store.json`, the file
infra/state_store.py declares the store from, so the two sides cannot drift apart.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


@cache
def store_schema() -> dict[str, Any]:
    """`schema/state_store.json`: beside this package in the deployment package, at the top of the repository."""
    for root in (_HERE.parent, _HERE.parent.parent):
        candidate = root / "schema" / "state_store.json"
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise FileNotFoundError("schema/state_store.json is not in the deployment package")


@dataclass(frozen=True)
class Settings:
    tasks_table: str
    history_table: str
    flows_table: str
    payload_bucket: str
    payload_threshold_bytes: int
    state_machine_arn: str
    # The Express machine quick runs take (POST /tasks with "wait"); empty: every task on Standard.
    express_state_machine_arn: str
    stage: str


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    tables = {name: env.get(table["environment"], "") for name, table in store_schema()["tables"].items()}
    payloads = store_schema()["payloads"]
    return Settings(
        tasks_table=tables["tasks"],
        history_table=tables["history"],
        flows_table=tables["flows"],
        payload_bucket=env.get(payloads["environment"], ""),
        payload_threshold_bytes=int(env.get(payloads["thresholdEnvironment"], payloads["defaultThresholdBytes"])),
        state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
        express_state_machine_arn=env.get("EXPRESS_STATE_MACHINE_ARN", ""),
        stage=env.get("STAGE", "dev"),
    )


def standard_execution_arn(name: str) -> str:
    """The ARN the Standard machine gives execution `name`: known before it starts (and whether it
    started), since a task's executions are named after the task (`<taskId>`, `-r<n>`, `-c<n>`)."""
    return get_settings().state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


@dataclass(frozen=True)
class EgressSettings:
    """The stage's egress settings (infra/config.py `egress`); secure when unset: nothing allowed."""

    allow_loopback: bool = False
    allow_private_networks: bool = False
    deny_hosts: tuple[str, ...] = ()


def egress_settings() -> EgressSettings:
    """Read on every call (cheap): tests and the local stack change these variables at run time."""
    env = os.environ
    return EgressSettings(
        allow_loopback=env.get("EGRESS_ALLOW_LOOPBACK", "").lower() == "true",
        allow_private_networks=env.get("EGRESS_ALLOW_PRIVATE_NETWORKS", "").lower() == "true",
        deny_hosts=tuple(entry.strip() for entry in env.get("EGRESS_DENY_HOSTS", "").split(",") if entry.strip()),
    )
