"""The local stack: the real Pulumi program on an embedded AWS (moto), its APIs served on loopback.

`python -m local` (what `make dev` runs) or, in tests, `with LocalStack(port=0) as stack: ...`.
"""

from local.stack import LocalStack

__all__ = ["LocalStack"]
