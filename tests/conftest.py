"""Shared test fixtures: fake AWS credentials so no test can reach a real account, and the
session's one local stack of the real program."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def program_stack() -> Iterator[Any]:
    """The real program on one local stack for the whole session, shared by `tests/integration`
    and `tests/e2e`.

    One process has one embedded AWS (`local/embedded.py`), and two stacks of the same program in
    it would create the same resource names. One stack, started by whichever test needs it first
    and stopped when the session ends, keeps the packages independent of the order they run in
    (the suite runs in random order) and starts the program once instead of once per package.
    Tests stay isolated on it by their own flow ids and task names."""
    from local.stack import LocalStack  # only the tests that use a stack pay for importing it

    with LocalStack(stage="dev", port=0) as running:
        yield running
