"""Where a client finds a stack: the local stack's `.local/outputs.json`, or `pulumi stack output` of a stage."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from aiwf_sdk.errors import StackOutputsError

LOCAL_OUTPUTS = Path(".local") / "outputs.json"
REQUIRED = ("taskApiUrl", "apiKey")


def from_file(path: str | Path = LOCAL_OUTPUTS) -> dict[str, Any]:
    """The outputs the local stack (`make dev`) writes, or any file of the same shape."""
    path = Path(path)
    if not path.is_file():
        raise StackOutputsError(
            f"{path} does not exist: start the local stack with `make dev`, or pass --stack STAGE for a deployed stage"
        )
    try:
        outputs = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StackOutputsError(f"{path} is not JSON: {exc}") from exc
    return _checked(outputs)


def from_stack(stack: str) -> dict[str, Any]:
    """A deployed stage's outputs, from `pulumi stack output --json --show-secrets --stack STACK`."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise StackOutputsError("the Pulumi CLI is not on PATH (needed to read a deployed stack's outputs)")
    run = subprocess.run(
        [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if run.returncode != 0:
        raise StackOutputsError(f"pulumi stack output failed for stack {stack!r}: {run.stderr.strip()}")
    try:
        outputs = json.loads(run.stdout)
    except json.JSONDecodeError as exc:
        raise StackOutputsError(f"pulumi stack output for {stack!r} is not JSON: {exc}") from exc
    return _checked(outputs)


def _checked(outputs: Any) -> dict[str, Any]:
    if not isinstance(outputs, dict):
        raise StackOutputsError("the stack outputs are not a JSON object")
    missing = [name for name in REQUIRED if not outputs.get(name)]
    if missing:
        raise StackOutputsError(f"the stack outputs have no {', '.join(missing)}")
    return outputs
