"""APPSYNC_JS resolver code passes the AppSync ESLint rules (what the runtime refuses: try/catch,
while, classes, async, regex literals ...), so a deploy never fails on code the runtime rejects."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.infra.stackmodel import REPO_ROOT

ESLINT = REPO_ROOT / "node_modules" / ".bin" / "eslint"
CONFIG = Path(__file__).with_name("appsync-resolvers.eslint.config.mjs")
RESOLVERS = REPO_ROOT / "schema" / "resolvers"


def _lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert ESLINT.is_file(), "eslint is not installed: run `make install` (npm ci)"
    return subprocess.run(
        [str(ESLINT), "--no-config-lookup", "-c", str(CONFIG), *map(str, paths)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_resolver_code_passes_the_appsync_rules() -> None:
    files = sorted(RESOLVERS.glob("*.js"))
    assert files, "no resolver code"
    result = _lint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_do_reject_what_appsync_js_cannot_run() -> None:
    bad = REPO_ROOT / "build" / "eslint-probe" / "bad.js"  # eslint ignores files outside the project
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("export function request(ctx) { try { return {}; } catch (e) { return {}; } }\n")
    result = _lint(bad)
    assert result.returncode == 1 and "@aws-appsync/no-try" in result.stdout, result.stdout + result.stderr
