"""Where the CLI finds a stack: `.local/outputs.json` of `make dev`, or `pulumi stack output` of a stage."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cli.errors import CliError, ExitCode

LOCAL_OUTPUTS = Path(".local") / "outputs.json"
REQUIRED = ("taskApiUrl", "apiKey")


def load_outputs(stack: str | None, outputs_file: Path | None) -> dict[str, Any]:
    """Stack outputs as a dict; a deployed stage when `stack` is given, else the local stack's file."""
    outputs = _from_pulumi(stack) if stack else _from_file(outputs_file or LOCAL_OUTPUTS)
    missing = [name for name in REQUIRED if not outputs.get(name)]
    if missing:
        raise CliError(f"the stack outputs have no {', '.join(missing)}", ExitCode.CONFIG)
    return outputs


def _from_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CliError(
            f"{path} does not exist: start the local stack with `make dev`, or pass --stack STAGE for a deployed stage",
            ExitCode.CONFIG,
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON: {exc}", ExitCode.CONFIG) from exc


def _from_pulumi(stack: str) -> dict[str, Any]:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise CliError("the Pulumi CLI is not on PATH (needed for --stack)", ExitCode.CONFIG)
    run = subprocess.run(
        [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if run.returncode != 0:
        raise CliError(f"pulumi stack output failed for stack {stack!r}: {run.stderr.strip()}", ExitCode.CONFIG)
    return json.loads(run.stdout)
