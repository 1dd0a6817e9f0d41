"""moto in process, beside the session's local stack: never reset.

moto keeps its backends in process-global state, which the session's local stack (the embedded
moto server of tests/integration and tests/e2e) shares. A plain `mock_aws()` resets every backend
when it starts and stops, which wipes that stack's tables, pools and IAM keys mid-session whenever
the random order puts a unit test between two tests that use the stack (its own clients then get
UnrecognizedClientException). Unit tests therefore name what they create uniquely and start moto
with this instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto import mock_aws
from moto.core.config import default_user_config


@contextmanager
def moto_without_reset() -> Iterator[None]:
    core = {**default_user_config["core"], "mock_credentials": False}  # the suite's fake credentials stay
    mock = mock_aws(config={"core": core})
    mock.start(reset=False)
    try:
        yield
    finally:
        mock.stop(remove_data=False)
