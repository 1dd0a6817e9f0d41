"""The local stack: the real Pulumi program on an embedded AWS (moto), its APIs served on loopback.

`python -m local` (what `make dev` runs) or, in tests, `with LocalStack(port=0) as stack: ...`.
`LocalStack` is imported on first use, so that importing one small module of the package (the
infra tests' harness imports `local.pulumi_mocks`) does not pull in the servers and moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.stack import LocalStack

__all__ = ["LocalStack"]


def __getattr__(name: str) -> Any:
    if name == "LocalStack":
        from local.stack import LocalStack

        return LocalStack
    raise AttributeError(f"module 'local' has no attribute {name!r}")
