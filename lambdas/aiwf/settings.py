"""The runtime's settings: the one module that reads the function environment infra/ sets.

Which variables exist, their types and defaults are declared in `schema/settings.json`, the file
infra/runtime_settings.py names the variables from, and the store's in `schema/state_store.json`,
the file infra/state_store.py declares the store from: the two sides cannot drift apart, and no
other module spells a variable name. Read lazily (most on every call) so tests and the local
stack can point the same code at other tables and change tuning values at run time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_TRUE = "true"


def _schema_file(name: str) -> dict[str, Any]:
    """`schema/<name>`: beside this package in the deployment package, at the top of the repository."""
    for root in (_HERE.parent, _HERE.parent.parent):
        candidate = root / "schema" / name
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise FileNotFoundError(f"schema/{name} is not in the deployment package")


@cache
def store_schema() -> dict[str, Any]:
    """`schema/state_store.json`: the store's tables, indexes and variables."""
    return _schema_file("state_store.json")


@cache
def settings_schema() -> dict[str, dict[str, Any]]:
    """`schema/settings.json`'s settings: key -> environment, type, default, description."""
    return _schema_file("settings.json")["settings"]


def environment_name(key: str) -> str:
    """The variable that carries setting `key` (KeyError for a setting nobody declared)."""
    return str(settings_schema()[key]["environment"])


def read(key: str, environ: Mapping[str, str] | None = None) -> Any:
    """Setting `key` as its declared type; unset or empty (or outside its `enum`): the default.

    A `required` setting that is unset raises KeyError naming the variable: the function was
    deployed without it, and no default would be right.
    """
    declared = settings_schema()[key]
    name = declared["environment"]
    text = (os.environ if environ is None else environ).get(name, "")
    kind = declared["type"]
    if text == "":
        if declared.get("required"):
            raise KeyError(name)
        return tuple(declared["default"]) if kind == "list" else declared.get("default")
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        return text.strip().lower() == _TRUE
    if kind == "list":
        return tuple(entry.strip() for entry in text.split(",") if entry.strip())
    if "enum" in declared and text not in declared["enum"]:
        return declared.get("default")
    return text


@dataclass(frozen=True)
class Settings:
    """What a warm function keeps for its lifetime: the store's names and the machines."""

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
        state_machine_arn=read("stateMachineArn"),
        express_state_machine_arn=read("expressStateMachineArn"),
        stage=read("stage"),
    )


def standard_execution_arn(name: str) -> str:
    """The ARN the Standard machine gives execution `name`: known before it starts (and whether it
    started), since a task's executions are named after the task (`<taskId>`, `-r<n>`, `-c<n>`)."""
    return get_settings().state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


# -- read on every call: tests and the local stack change these at run time -------------------------


def llm_provider() -> str:
    """The stage's model provider for llm steps (bedrock, local or openai)."""
    return str(read("llmProvider"))


def llm_endpoint() -> str:
    """The openai provider's endpoint; empty when the stage names none."""
    return str(read("llmEndpoint"))


def durable_function_arn() -> str:
    """The qualified ARN (a published version) of the durable orchestrator; empty when not deployed."""
    return str(read("durableFunctionArn"))


def default_engine() -> str:
    """The stage's `defaultEngine`, for flows that do not name one."""
    return str(read("defaultEngine"))


def graphql_url() -> str:
    """The Workflow State API state changes are published to (KeyError when not deployed with one)."""
    return str(read("graphqlUrl"))


def task_api_url() -> str:
    """The task REST API's URL, of which waits build their `callbackUrl`; empty when not told."""
    return str(read("taskApiUrl"))


def replay_queue_url() -> str:
    """The on-failure queue the replayer drains; empty: failed messages keep the queue's timeout."""
    return str(read("replayQueueUrl"))


def replay_backoff_seconds() -> tuple[int, int]:
    """(first, longest) backoff of a message the replayer could not publish."""
    return int(read("replayBackoffSeconds")), int(read("replayBackoffMaxSeconds"))


def express_budget_seconds() -> float:
    """How long a quick run may stay on the Express machine."""
    return float(read("expressBudgetSeconds"))


def express_retry_horizon_seconds() -> float:
    """The latest end of a retry wait a quick run takes on the Express machine."""
    return float(read("expressRetryHorizonSeconds"))


def continue_after_events() -> int:
    """History events after which a Standard execution hands its task to a fresh one."""
    return int(read("continueAfterEvents"))


def continue_check_every_rounds() -> int:
    """How often (step-loop rounds) the history length is counted."""
    return int(read("continueCheckEveryRounds"))


@dataclass(frozen=True)
class EgressSettings:
    """The stage's egress settings (infra/config.py `egress`); secure when unset: nothing allowed."""

    allow_loopback: bool = False
    allow_private_networks: bool = False
    deny_hosts: tuple[str, ...] = ()


def egress_settings() -> EgressSettings:
    """Read on every call (cheap): tests and the local stack change these variables at run time."""
    return EgressSettings(
        allow_loopback=bool(read("egressAllowLoopback")),
        allow_private_networks=bool(read("egressAllowPrivateNetworks")),
        deny_hosts=tuple(read("egressDenyHosts")),
    )


def template_ms() -> int:
    """Milliseconds one template render may run before it fails with `TemplateTimeout` (the
    stage's `limits.templateMs`)."""
    return int(read("limitsTemplateMs"))


def response_bytes() -> int:
    """Bytes of an HTTP response body a step may read before it fails with `ResponseTooLarge`
    (the stage's `limits.responseBytes`)."""
    return int(read("limitsResponseBytes"))


def user_pool_id() -> str:
    """The stage's user pool whose ID tokens the REST authorizer accepts (KeyError when not deployed with one)."""
    return str(read("userPoolId"))


def user_pool_client_id() -> str:
    """The `aud` an accepted ID token carries: the user pool's app client."""
    return str(read("userPoolClientId"))


def api_key_hashes() -> tuple[str, ...]:
    """SHA-256 hex digests of the API keys the REST authorizer accepts."""
    return tuple(read("apiKeyHashes"))


def api_key_expires() -> str:
    """When the REST API key stops being accepted (RFC 3339); empty: never."""
    return str(read("apiKeyExpires"))
