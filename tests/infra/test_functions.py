"""Lambda functions: supported runtime, handlers that exist, one shared package plus the dependency layer."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.infra.stackmodel import LAYER, LOG_GROUP, REPO_ROOT, Resource, Stack

MINIMUM_PYTHON = (3, 12)


def _code_folder(function: Resource) -> Path:
    code = function.inputs["code"]
    assert code.get("__pulumi__") == "FileArchive", f"{function.name}: code is {code}"
    return Path(code["path"])


def test_runtime_is_a_supported_python(stack: Stack) -> None:
    """python3.12+ in the cloud (3.11 is only the local interpreter); x86_64 as the layer is built."""
    for function in stack.functions():
        match = re.fullmatch(r"python(\d+)\.(\d+)", function.inputs["runtime"])
        assert match, f"{function.name}: runtime {function.inputs['runtime']}"
        assert (int(match[1]), int(match[2])) >= MINIMUM_PYTHON, f"{function.name}: {function.inputs['runtime']}"
        assert function.inputs["architectures"] == ["x86_64"], function.name


def test_handlers_are_importable_module_functions(stack: Stack) -> None:
    """A typo in a handler string deploys fine and fails on the first invocation; catch it here."""
    for function in stack.functions():
        module_name, _, attribute = function.inputs["handler"].rpartition(".")
        assert module_name and attribute, function.inputs["handler"]
        module = importlib.import_module(module_name)  # `lambdas` is on sys.path (pyproject)
        handler = getattr(module, attribute, None)
        assert callable(handler), f"{function.name}: {function.inputs['handler']} is not a function"
        # ... and the module ships in the archive the function is deployed from.
        source = _code_folder(function) / (module_name.replace(".", "/") + ".py")
        assert source.is_file(), f"{function.name}: {source.relative_to(REPO_ROOT)} is not in the package"


def test_functions_share_one_code_archive_without_third_party_code(stack: Stack) -> None:
    """One package for every function; dependencies live in the layer, never in the package."""
    folders = {_code_folder(function) for function in stack.functions()}
    assert len(folders) == 1, folders
    folder = folders.pop()
    assert folder.is_dir(), folder
    top_level = {path.name for path in folder.iterdir()}
    assert "aiwf" in top_level
    assert top_level <= {"aiwf", "schema"}, f"unexpected content in the function package: {sorted(top_level)}"
    assert (folder / "schema" / "flow.schema.json").is_file(), "the runtime validates flows against it"
    assert not list(folder.rglob("__pycache__")), "build litter in the package"


def test_functions_use_the_dependency_layer(stack: Stack) -> None:
    layer = stack.one(LAYER)
    layer_code = Path(layer.inputs["code"]["path"])
    for function in stack.functions():
        assert function.inputs["layers"] == [layer.outputs["arn"]], function.name
        assert function.inputs["runtime"] in layer.inputs["compatibleRuntimes"], function.name
        assert set(function.inputs["architectures"]) <= set(layer.inputs["compatibleArchitectures"]), function.name
        assert layer_code != _code_folder(function)
    assert layer.inputs["layerName"] == f"aiwf-{stack.stage}-deps"


def test_functions_log_to_their_own_group_as_json(stack: Stack) -> None:
    """The log group is declared (with the stage's retention) rather than auto-created without one."""
    groups = {group.inputs["name"] for group in stack.of_type(LOG_GROUP)}
    for function in stack.functions():
        logging = function.inputs["loggingConfig"]
        assert logging["logFormat"] == "JSON", function.name
        assert logging["logGroup"] == f"/aws/lambda/{function.inputs['name']}", function.name
        assert logging["logGroup"] in groups, function.name


def test_function_names_are_stage_prefixed(stack: Stack) -> None:
    """Two stages in one account must never collide."""
    for function in stack.functions():
        assert function.inputs["name"].startswith(f"aiwf-{stack.stage}-"), function.inputs["name"]
