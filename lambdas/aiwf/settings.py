"""Runtime settings read from the function environment that infra/ sets.

Read lazily so tests and the local stack can point the same code at other tables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    tasks_table: str
    history_table: str
    flows_table: str
    payload_bucket: str
    payload_threshold_bytes: int
    state_machine_arn: str
    stage: str


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        tasks_table=env.get("TASKS_TABLE", ""),
        history_table=env.get("HISTORY_TABLE", ""),
        flows_table=env.get("FLOWS_TABLE", ""),
        payload_bucket=env.get("PAYLOAD_BUCKET", ""),
        payload_threshold_bytes=int(env.get("PAYLOAD_THRESHOLD_BYTES", "131072")),
        state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
        stage=env.get("STAGE", "dev"),
    )


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
