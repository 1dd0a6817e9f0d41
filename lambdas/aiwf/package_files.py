"""Files the runtime reads beside its code: the `schema/` folder.

infra/packaging.py copies the repository's `schema/*.json` next to this package in the deployment
package; in the repository (tests, the local stack's own imports) they sit in the top-level
`schema/` folder. Either way the runtime finds them here.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def schema_file(name: str) -> Path:
    """The path of `schema/<name>`, in the deployment package or in the repository."""
    for root in (_HERE.parent, _HERE.parent.parent):
        candidate = root / "schema" / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"schema/{name} is not in the deployment package")
