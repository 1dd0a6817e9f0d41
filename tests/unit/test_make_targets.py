"""`make preview` / `make deploy` without the Pulumi CLI stop at once with how to install it,
before `make layer` spends its time building the dependency layer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", ["preview", "deploy"])
def test_preview_and_deploy_check_for_the_pulumi_cli_first(target: str, tmp_path: Path):
    make = shutil.which("make")
    assert make is not None
    run = subprocess.run(
        [make, target, "STAGE=dev"],
        cwd=ROOT,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},  # a PATH with no pulumi on it
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "the Pulumi CLI is not installed: curl -fsSL https://get.pulumi.com | sh" in run.stderr
    assert "pip" not in run.stdout + run.stderr  # neither the install nor the layer build started
