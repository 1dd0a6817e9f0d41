"""Fixtures for the infra tests: the real program planned once per stage under Pulumi mocks.

Each stage runs in its own interpreter (`python -m tests.infra.harness <stage>`) because Pulumi's
runtime state is process-global; the JSON it prints is loaded once per test session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.stackmodel import STAGES, Stack, harness_report, load_stack, start_harness


@pytest.fixture(scope="session")
def stacks() -> dict[str, Stack]:
    """Both stages, planned in parallel (two interpreters) to keep the suite fast."""
    procs = {stage: start_harness(stage) for stage in STAGES}
    return {stage: load_stack(harness_report(stage, proc)) for stage, proc in procs.items()}


@pytest.fixture(params=STAGES)
def stack(request: pytest.FixtureRequest, stacks: dict[str, Stack]) -> Iterator[Stack]:
    """Each stage in turn: tests that must hold for every stage take this."""
    yield stacks[request.param]
