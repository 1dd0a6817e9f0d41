"""Pulumi's mock runtime, driven the one way both the local stack and the infra tests need it.

`run_program` runs a real Pulumi program (`__main__.py`) under a `pulumi.runtime.Mocks` as the
Pulumi Python host would run it (config set, the project folder on `sys.path` and as the working
directory, a fresh root stack, every RPC awaited), and hands back the root stack's outputs. The
mocks decide what each resource becomes: `local.mocks` creates it in the embedded AWS,
`tests/infra/harness.py` records it. Both answer the provider's account/region/partition calls
with `provider_call_answer`, read stage config with `config_value` and unwrap secret inputs with
`unsecret`.

Pulumi's runtime state is process-global: one program run at a time per process.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ACCOUNT_ID = "123456789012"


def config_value(value: Any) -> str | None:
    """A config value as the Pulumi CLI hands it to programs: YAML scalars as their text (`true`,
    `90`), structured values as JSON; None for an unset one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return None if value is None else str(value)


def is_wrapped_secret(value: Any) -> bool:
    """Whether `value` is a secret as mocks receive it: `{<sig key>: <secret sig>, "value": ...}`."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unsecret(value: Any) -> Any:
    """Secret inputs reach mocks wrapped as `{<sig key>: <secret sig>, "value": ...}`: the value."""
    return value["value"] if is_wrapped_secret(value) else value


def provider_call_answer(token: str, region: str) -> dict[str, Any] | None:
    """The AWS provider's answer to its account, region and partition data sources (None: another call)."""
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "accountId": ACCOUNT_ID,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/local",
            "userId": "AIDALOCALSTACKUSER",
            "id": ACCOUNT_ID,
        }
    if token == "aws:index/getRegion:getRegion":
        return {
            "name": region,
            "region": region,
            "id": region,
            "description": region,
            "endpoint": f"ec2.{region}.amazonaws.com",
        }
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
    return None


def run_program(
    program: Path,
    project: str,
    stack: str,
    config: dict[str, str],
    mocks: pulumi.runtime.Mocks,
    monitor: MockMonitor | None = None,
    logger: logging.Logger | None = None,
) -> dict[str, Any]:
    """Run `program` under `mocks` (and `monitor`, to see what `Mocks` never sees: parents, options)
    as `pulumi up` would; the root stack's outputs, as exported (Outputs: see `resolve`)."""
    pulumi.runtime.set_all_config(config, [])
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]  # a fresh Stack per run
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, logger=logger, monitor=monitor)
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()

    project_dir = str(program.parent)
    previous_cwd = os.getcwd()
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)  # as the Pulumi Python host does, so `import infra` works
    os.chdir(project_dir)
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
        root = pulumi_settings.get_root_resource()
        if root is None:
            raise RuntimeError("the Pulumi runtime has no root stack resource after the program ran")
        return dict(root.outputs)
    finally:
        os.chdir(previous_cwd)


def resolve(value: Any) -> tuple[Any, bool]:
    """A declared value (an Output, or plain values that may hold Outputs) resolved, and whether it is secret."""
    output = pulumi.Output.from_input(value)
    return _sync_await(output.future()), bool(_sync_await(output.is_secret()))
