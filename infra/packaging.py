"""The function deployment package: one folder, zipped by Pulumi, shared by every function.

It holds `lambdas/aiwf` and the JSON schemas the runtime validates against. Third-party
dependencies are not in it: they go in the layer that `make layer` builds for the Lambda
platform (see docs/deploy in the README).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_DIR = REPO_ROOT / "build" / "layer"


def _sources() -> list[tuple[Path, str]]:
    """(source file, path inside the package) for everything the package holds."""
    lambdas = REPO_ROOT / "lambdas"
    files = [
        (path, path.relative_to(lambdas).as_posix())
        for path in sorted((lambdas / "aiwf").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    files += [(path, f"schema/{path.name}") for path in sorted((REPO_ROOT / "schema").glob("*.json"))]
    return files


def build_function_package(build_root: Path | None = None) -> Path:
    """Assemble the package folder and return it.

    The folder is named by a hash of its contents, so the same sources always give the same
    folder, and concurrent runs (tests, the local stack) never write into each other's.
    """
    sources = _sources()
    digest = hashlib.sha256()
    for path, name in sources:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    root = build_root or REPO_ROOT / "build" / "function-package"
    out = root / digest.hexdigest()[:16]
    if out.is_dir():
        return out
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        for path, name in sources:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        try:
            staging.rename(out)
        except OSError:
            if not out.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
