"""Every function environment variable is named once: in `schema/settings.json` or
`schema/state_store.json`. infra/ writes the names through infra/runtime_settings.py and
infra/state_access.py, lambdas/ reads them through aiwf/settings.py; no other module spells one,
so a renamed or misspelt variable cannot deploy a value nobody reads."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("lambdas", "infra", "local", "__main__.py")
# The local stack's own command line reads a STAGE variable of the developer's shell: same word,
# not the functions' setting.
HOST_VARIABLES: dict[str, set[str]] = {"local/stack.py": {"STAGE"}, "local/__main__.py": {"STAGE"}}
VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")


def declared_names() -> set[str]:
    settings = json.loads((ROOT / "schema" / "settings.json").read_text())["settings"]
    store = json.loads((ROOT / "schema" / "state_store.json").read_text())
    names = {setting["environment"] for setting in settings.values()}
    names |= {table["environment"] for table in store["tables"].values()}
    names |= {store["payloads"]["environment"], store["payloads"]["thresholdEnvironment"]}
    return names


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for entry in SCANNED:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            if "__pycache__" not in file.parts:
                yield file.relative_to(ROOT).as_posix(), ast.parse(file.read_text(), filename=str(file))


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)


def _environ_reads(tree: ast.Module) -> Iterator[str]:
    """Literal names read with `os.environ[...]`, `os.environ.get(...)` or `os.getenv(...)`."""
    for node in ast.walk(tree):
        key: ast.AST | None = None
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            key = node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            target = node.func
            reads_environ = target.attr in ("get", "pop", "setdefault") and _is_os_environ(target.value)
            if reads_environ or target.attr == "getenv":
                key = node.args[0]
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            yield key.value


def test_declared_names_are_unique_and_well_formed() -> None:
    settings = json.loads((ROOT / "schema" / "settings.json").read_text())["settings"]
    names = [setting["environment"] for setting in settings.values()]
    assert len(names) == len(set(names)), "two settings share a variable"
    for key, setting in settings.items():
        assert VARIABLE.match(setting["environment"]), key
        assert setting["type"] in ("string", "integer", "number", "boolean", "list"), key
        assert setting.get("description"), f"{key}: say what it is for"
        assert ("default" in setting) != bool(setting.get("required")), f"{key}: a default, or required"


def test_no_module_spells_a_declared_variable() -> None:
    names = declared_names()
    found = []
    for path, tree in _sources():
        allowed = HOST_VARIABLES.get(path, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and node.value not in allowed:
                found.append(f"{path}:{node.lineno}: {node.value}")
    assert not found, "use infra/runtime_settings.py or aiwf.settings instead:\n" + "\n".join(found)


def test_lambdas_read_the_environment_only_in_the_settings_module() -> None:
    """Other than the AWS SDK's own variables (egress finds the endpoints the SDK will call)."""
    found = [
        f"{path}: {name}"
        for path, tree in _sources()
        if path.startswith("lambdas/")
        for name in _environ_reads(tree)
        if not name.startswith("AWS_")
    ]
    assert not found, found


def test_infra_writes_no_literal_variable_names() -> None:
    """A variable a component adds by hand would be one the runtime does not declare."""
    found = []
    for path, tree in _sources():
        if not (path.startswith("infra/") or path == "__main__.py"):
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.keyword) and node.arg in ("environment", "variables")):
                continue
            if isinstance(node.value, ast.Dict):
                for key in node.value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and VARIABLE.match(key.value):
                        found.append(f"{path}:{key.lineno}: {key.value}")
    assert not found, found
