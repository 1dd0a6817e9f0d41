"""The CLI has no HTTP (or GraphQL) code of its own: every call goes through the SDK's client."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[3] / "cli"
NETWORK_MODULES = ("requests", "httpx", "urllib", "http", "aiohttp", "gql", "websockets", "socket")


def test_cli_modules_import_no_network_library():
    found = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {name}" for name in names if name.split(".")[0] in NETWORK_MODULES]
    assert found == []
    assert "aiwf_sdk" in (CLI / "app.py").read_text()
