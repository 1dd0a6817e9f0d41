"""The SDK is typed (py.typed): `mypy --strict` (configured in sdk/pyproject.toml) must be clean on it.

mypy is pinned in requirements-dev.txt; a missing mypy fails this test, it does not skip it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parents[3] / "sdk"


def test_mypy_strict_is_clean_on_the_sdk(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "aiwf_sdk"],
        cwd=SDK,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success: no issues found" in run.stdout
    assert (SDK / "aiwf_sdk" / "py.typed").is_file()
