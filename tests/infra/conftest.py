"""Fixtures for the infra tests: the real program planned once per stage under Pulumi mocks.

Each stage runs in its own interpreter (`python -m tests.infra.harness <stage>`) because Pulumi's
runtime state is process-global; the JSON it prints is loaded once per test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.infra.stackmodel import REPO_ROOT, STAGES, Resource, Stack


def start_harness(stage: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start planning the program for `stage` in a fresh interpreter (repo root importable)."""
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.infra.harness", stage],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def harness_report(stage: str, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The JSON report of a started harness, or a test failure showing the program's stderr."""
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"planning stage {stage!r} under mocks took more than 120 s")
    if proc.returncode != 0:
        pytest.fail(f"the Pulumi program failed under mocks for stage {stage!r}:\n{err[-6000:]}")
    return json.loads(out)


def load_stack(report: dict[str, Any]) -> Stack:
    stage = report["stage"]
    document = yaml.safe_load((REPO_ROOT / f"Pulumi.{stage}.yaml").read_text())
    resources = [
        Resource(
            type=item["type"],
            name=item["name"],
            id=item.get("id"),
            inputs=item["inputs"],
            outputs=item["outputs"],
            parent=item.get("parent"),
            retain_on_delete=item.get("retainOnDelete", False),
            depends_on=item.get("dependsOn", []),
        )
        for item in report["resources"]
    ]
    outputs = {name: entry["value"] for name, entry in report["outputs"].items()}
    secrets = frozenset(name for name, entry in report["outputs"].items() if entry["secret"])
    return Stack(stage, document["config"], resources, outputs, secrets)


@pytest.fixture(scope="session")
def stacks() -> dict[str, Stack]:
    """Both stages, planned in parallel (two interpreters) to keep the suite fast."""
    procs = {stage: start_harness(stage) for stage in STAGES}
    return {stage: load_stack(harness_report(stage, proc)) for stage, proc in procs.items()}


@pytest.fixture(params=STAGES)
def stack(request: pytest.FixtureRequest, stacks: dict[str, Stack]) -> Iterator[Stack]:
    """Each stage in turn: tests that must hold for every stage take this."""
    yield stacks[request.param]
