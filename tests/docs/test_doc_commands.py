"""Every command the README and docs/*.md show is checked here, without a cloud: the docs cannot drift.

Runnable walkthrough blocks are also *run* against the local stack (tests/integration/test_readme.py,
tests/integration/test_docs.py); here every command, runnable or not, must name things that exist:
make targets, `bin/aiwf` subcommands and options, Pulumi stages, config keys and outputs, AWS CLI
operations and parameters (from botocore's service models), task API paths and methods (from the
OpenAPI document), Python modules and files. A command of any other kind fails the test: teach
`check_command` about it first. Conventions: tests/docs/markdown.py.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore import xform_name

from tests.docs.markdown import ROOT, SHELL_LANGUAGES, Block, blocks, documents, inline_spans, split_commands, words

KNOWN_LANGUAGES = (*SHELL_LANGUAGES, "python", "js", "yaml", "json", "mermaid", "graphql", "text", "")
SHELL_UTILITIES = {"for", "done", "[", "break", "sleep", "wait", "echo", "cd", "export", "kill", "true", "set"}
CHECKED_PROGRAMS = ("make", "bin/aiwf", "pulumi", "aws", "curl", "python", "python3", ".venv/bin/python")
PULUMI_SUBCOMMANDS = {("up",), ("preview",), ("destroy",), ("refresh",), ("stack", "output"), ("config", "set")}
PULUMI_OPTIONS_WITH_VALUE = {"-s", "--stack"}
AWS_GLOBAL_OPTIONS = {"--region", "--output", "--query", "--profile", "--endpoint-url", "--max-items"}
AWS_GLOBAL_FLAGS = {"--no-cli-pager", "--debug"}


def _stages() -> set[str]:
    return {path.name.split(".")[1] for path in ROOT.glob("Pulumi.*.yaml")}


def _stack_outputs() -> set[str]:
    return set(re.findall(r'pulumi\.export\("(\w+)"', (ROOT / "__main__.py").read_text()))


def _config_keys() -> set[str]:
    from infra.config import PROJECT, stage_keys

    return {f"{PROJECT}:{key}" for key in stage_keys()} | {"aws:region"}


# -- one checker per program ------------------------------------------------------------------


@cache
def _make_target_exists(target: str) -> bool:
    return subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, timeout=60).returncode == 0


def check_make(args: list[str]) -> None:
    targets = [arg for arg in args if not arg.startswith("-") and "=" not in arg]
    assert targets, "make without a target"
    for target in targets:
        assert _make_target_exists(target), f"`make -n {target}` fails: no such target"
    for arg in args:
        if arg.startswith("STAGE="):
            assert arg.split("=", 1)[1] in _stages(), f"{arg}: no Pulumi.<stage>.yaml for it"


@cache
def _aiwf_help(path: tuple[str, ...]) -> str:
    run = subprocess.run(
        [str(ROOT / "bin" / "aiwf"), *path, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert run.returncode == 0, f"`bin/aiwf {' '.join(path)} --help` fails: {run.stderr}"
    return run.stdout


def check_aiwf(args: list[str], *, complete: bool) -> None:
    """Parse the arguments with the CLI's own click commands; `complete` = every required argument given."""
    from typer._click.exceptions import UsageError  # typer runs its own copy of click
    from typer.main import get_command

    from cli.app import app

    command: Any = get_command(app)
    context: Any = None
    path: list[str] = []
    rest = list(args)
    while hasattr(command, "get_command"):  # a group of subcommands
        context = command.make_context(path[-1] if path else "aiwf", rest, parent=context, resilient_parsing=True)
        rest = [*context._protected_args, *context.args]
        if not rest:
            assert not complete, f"bin/aiwf {' '.join(path)} needs a subcommand"
            return
        name = rest.pop(0)
        sub = command.get_command(context, name)
        assert sub is not None, f"bin/aiwf has no subcommand {' '.join([*path, name])!r}"
        path.append(name)
        command = sub
    options = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    for arg in rest:
        if arg.startswith("-") and arg != "-":
            assert arg.split("=", 1)[0] in options, f"bin/aiwf {' '.join(path)} has no option {arg}"
    if complete:
        try:
            command.make_context(path[-1], rest, parent=context)
        except UsageError as exc:
            raise AssertionError(f"bin/aiwf {' '.join(path)} {rest}: {exc.format_message()}") from None
    help_text = _aiwf_help(tuple(path))
    for arg in rest:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in help_text, f"`bin/aiwf {' '.join(path)} --help` does not show {arg}"


def check_pulumi(args: list[str]) -> None:
    stack = None
    positional: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in PULUMI_OPTIONS_WITH_VALUE:
            stack = args[index + 1]
            index += 2
            continue
        if arg.startswith("--stack="):
            stack = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            positional.append(arg)
        index += 1
    subcommand = next((sub for sub in PULUMI_SUBCOMMANDS if tuple(positional[: len(sub)]) == sub), None)
    assert subcommand, f"pulumi {' '.join(positional)}: not a Pulumi subcommand this test knows"
    extra = positional[len(subcommand) :]
    if subcommand == ("stack", "output"):
        assert set(extra) <= _stack_outputs(), f"no stack output {extra}"
    if subcommand == ("config", "set"):
        assert extra and extra[0] in _config_keys(), f"pulumi config set {extra[:1]}: infra/config.py reads no such key"
    if stack is not None:
        assert stack in _stages(), f"stage {stack!r} has no Pulumi.{stack}.yaml"


@cache
def _aws_operations(service: str) -> dict[str, set[str]]:
    model = botocore.session.get_session().get_service_model(service)
    operations = {}
    for name in model.operation_names:
        shape = model.operation_model(name).input_shape
        members = set(shape.members) if shape else set()
        operations[xform_name(name, "-")] = {f"--{xform_name(member, '-')}" for member in members}
    return operations


def check_aws(args: list[str]) -> None:
    assert len(args) >= 2, "aws SERVICE OPERATION"
    service, operation, *rest = args
    try:
        operations = _aws_operations(service)
    except botocore.exceptions.UnknownServiceError:
        raise AssertionError(f"aws {service}: botocore knows no such service") from None
    assert operation in operations, f"aws {service} {operation}: no such operation in botocore's model"
    allowed = operations[operation] | AWS_GLOBAL_OPTIONS | AWS_GLOBAL_FLAGS
    for arg in rest:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in allowed, f"aws {service} {operation} has no parameter {arg}"


@cache
def _task_api_operations() -> list[tuple[re.Pattern[str], set[str]]]:
    spec = yaml.safe_load((ROOT / "schema" / "tasks-api.yaml").read_text())
    return [
        (re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"), {m.upper() for m in item if m != "parameters"})
        for path, item in spec["paths"].items()
    ]


def check_curl(args: list[str], *, complete: bool) -> None:
    urls = [arg for arg in args if arg.startswith(("$API", "${API}", "$GQL", "http"))]
    if not urls:
        assert not complete, "curl without a URL this test knows ($API/..., $GQL)"
        return
    url = urls[0]
    if url.startswith("$GQL"):
        return
    assert url.startswith(("$API", "${API}")), f"curl {url}: not the task API ($API) or GraphQL ($GQL)"
    path = url.split("}", 1)[-1] if url.startswith("${") else url[4:]
    path = re.sub(r"\$\{?\w+\}?", "x", path.split("?", 1)[0])
    method = "GET"
    if "-X" in args:
        method = args[args.index("-X") + 1]
    elif any(arg in ("-d", "--data") for arg in args):
        method = "POST"
    methods = [methods for pattern, methods in _task_api_operations() if pattern.match(path)]
    assert methods, f"curl {url}: schema/tasks-api.yaml has no path {path}"
    assert method in methods[0], f"curl -X {method} {url}: the task API has no {method} {path}"


def check_python(args: list[str], files: set[str]) -> None:
    assert args, "python without arguments"
    if args[0] == "-m":
        assert importlib.util.find_spec(args[1]) is not None, f"python -m {args[1]}: no such module"
    elif args[0] == "-c":
        compile(args[1], "<doc>", "exec")
    else:
        script = args[0]
        assert script in files or (ROOT / script).is_file(), f"python {script}: no such file"


def node_syntax_error(source: str, suffix: str = ".mjs") -> str:
    """Node's own syntax check of `source` (an ES module for .mjs, a script for .js): its complaint, or ""."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"check{suffix}"
        path.write_text(source)
        run = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True, timeout=60)
    return "" if run.returncode == 0 else run.stderr


def check_node(args: list[str]) -> None:
    assert args, "node without arguments"
    if args[0] in ("-e", "--eval"):
        error = node_syntax_error(args[1], ".js")
        assert not error, f"node -e: {error}"
    else:
        assert (ROOT / args[0]).is_file(), f"node {args[0]}: no such file"


def check_command(command: str, *, complete: bool, files: set[str] = frozenset()) -> None:
    tokens = words(command)
    if not tokens:
        return
    program, args = tokens[0], tokens[1:]
    if program == "make":
        check_make(args)
    elif program == "bin/aiwf":
        check_aiwf(args, complete=complete)
    elif program == "pulumi":
        check_pulumi(args)
    elif program == "aws":
        check_aws(args)
    elif program == "curl":
        check_curl(args, complete=complete)
    elif program in ("python", "python3", ".venv/bin/python"):
        check_python(args, files)
    elif program == "node":
        check_node(args)
    elif program not in SHELL_UTILITIES:
        raise AssertionError(
            f"{command!r}: a command of a kind tests/docs/test_doc_commands.py cannot check; teach it first"
        )


# -- collecting what the docs show ------------------------------------------------------------


def _commands() -> list[tuple[str, str, bool, frozenset[str]]]:
    """(where, command, complete, files the walkthrough saves) for every command in the docs."""
    found = []
    for path in documents():
        found_blocks = blocks(path)
        files = frozenset(block.file_name for block in found_blocks if block.file_name)
        for block in found_blocks:
            if block.language in SHELL_LANGUAGES:
                found += [(block.where, command, True, files) for command in split_commands(block.text)]
            elif block.language not in ("python", "mermaid"):
                for offset, line in enumerate(block.text.splitlines(), start=1):
                    if line.startswith("$ "):
                        where = f"{path.relative_to(ROOT)}:{block.line + offset - 1}"
                        found += [(where, command, True, files) for command in split_commands(line[2:])]
        for line, span in inline_spans(path):
            tokens = words(span) if _shell_like(span) else []
            if len(tokens) > 1 and tokens[0] in CHECKED_PROGRAMS:  # (a bare program name is prose)
                shown = span.split("...", 1)[0]  # `bin/aiwf --stack prod ...`: what precedes the ellipsis
                found.append((f"{path.relative_to(ROOT)}:{line}", shown, False, files))
    return found


def _shell_like(span: str) -> bool:
    try:
        return bool(words(span))
    except ValueError:
        return False


COMMANDS = _commands()


@pytest.mark.parametrize(("where", "command", "complete", "files"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_names_what_exists(where, command, complete, files):
    check_command(command, complete=complete, files=files)


def _all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


@pytest.mark.parametrize("block", _all_blocks(), ids=lambda block: block.where)
def test_every_block_is_a_kind_we_check(block):
    assert block.language in KNOWN_LANGUAGES, f"{block.where}: a ```{block.language} block; teach this test about it"
    if block.language == "python":
        compile(block.text, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    elif block.language == "js":
        error = node_syntax_error(block.text)
        assert not error, f"{block.where}: {error}"
    elif block.language == "yaml":
        yaml.safe_load(block.text)
    elif block.language == "json":
        json.loads(block.text)


def test_the_readme_has_a_runnable_walkthrough_with_the_cli_and_a_subscriber():
    readme = [block for block in blocks(ROOT / "README.md") if block.runnable]
    text = "".join(block.text for block in readme if block.language in SHELL_LANGUAGES)
    for needed in ("curl", "bin/aiwf flows put", "bin/aiwf run", "bin/aiwf watch", "bin/aiwf resume"):
        assert needed in text, f"the README walkthrough lost {needed!r}"
    assert any(block.file_name for block in readme), "the README walkthrough lost its GraphQL subscriber"
    head = (ROOT / "README.md").read_text().splitlines()[:60]
    assert "make dev" in "\n".join(head) and "make test" in "\n".join(head), "set-up commands must stay at the top"


def test_the_checker_refuses_what_it_cannot_check():
    with pytest.raises(AssertionError, match="cannot check"):
        check_command("terraform apply", complete=True)
    with pytest.raises(AssertionError, match="no such target"):
        check_command("make no-such-target", complete=True)
    with pytest.raises(AssertionError, match="no such operation"):
        check_command("aws stepfunctions stop-everything", complete=True)
    with pytest.raises(AssertionError, match="no option"):
        check_command("bin/aiwf resume T --tokn x", complete=False)
    with pytest.raises(AssertionError, match="no path"):
        check_command("curl -s $API/nowhere", complete=True)
    with pytest.raises(AssertionError, match=r"Pulumi\.staging\.yaml"):
        check_command("pulumi up -s staging", complete=True)
    with pytest.raises(AssertionError, match="SyntaxError"):
        check_command("node -e 'console.log('", complete=True)
    with pytest.raises(AssertionError, match="no such file"):
        check_command("node app.mjs", complete=True)


def test_split_commands_sees_substitutions_and_skips_comments():
    text = "A=$(curl -s \"$API/tasks\" | python3 -c 'print(1)')  # it's a comment\nmake dev && bin/aiwf list &\n"
    programs = [words(command)[0] for command in split_commands(text) if words(command)]
    assert programs == ["make", "bin/aiwf", "curl", "python3"]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _links() -> list[tuple[str, Path, str]]:
    found = []
    for path in documents():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if not re.match(r"^[a-z]+:", target):
                    found.append((f"{path.relative_to(ROOT)}:{number}", path, target))
    return found


@pytest.mark.parametrize(("where", "path", "target"), _links(), ids=[link[0] for link in _links()])
def test_every_relative_link_resolves(where, path, target):
    file_part, _, anchor = target.partition("#")
    linked = (path.parent / file_part).resolve() if file_part else path
    assert linked.exists(), f"{where}: {target} does not exist"
    if anchor:
        headings = [m.group(2) for m in re.finditer(r"^(#{1,6})\s+(.*)$", linked.read_text(), re.MULTILINE)]
        assert anchor in {_slug(h) for h in headings}, f"{where}: {linked.name} has no heading #{anchor}"
