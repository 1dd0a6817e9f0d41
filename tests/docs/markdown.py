"""The commands the README and docs/*.md show, found the way a reader finds them.

Conventions (what tests/docs/test_doc_commands.py and the walkthrough tests rely on):
- A fenced block tagged `sh`, `bash` or `shell` holds commands. Under a heading whose text contains
  "walkthrough" (or under a subheading of one), the blocks are *runnable*: run in order, verbatim,
  as one bash script against the local stack. Everywhere else they are checked without running.
- A `python` block under a walkthrough heading whose first line is `# NAME.py ...` is a file the
  walkthrough uses: the runner writes it as NAME.py in the working directory first.
- In any other fenced block, a line starting with `$ ` is a command shown with its output.
- An inline code span starting with a checked program (make, bin/aiwf, pulumi, aws, curl, python)
  is a command too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = ("sh", "bash", "shell")
_FENCE = re.compile(r"^(?P<fence>```+)(?P<info>[^`\n]*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_FILE_BLOCK = re.compile(r"^#\s*([\w.-]+\.py)\b")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    headings: tuple[str, ...]  # the enclosing headings, outermost first

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runnable(self) -> bool:
        return any("walkthrough" in heading.lower() for heading in self.headings)

    @property
    def file_name(self) -> str | None:
        """NAME.py for a python block that a walkthrough saves as a file."""
        match = _FILE_BLOCK.match(self.text)
        return match.group(1) if self.language == "python" and self.runnable and match else None


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    headings: list[tuple[int, str]] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            closing = fence.group("fence")
            body: list[str] = []
            index += 1
            while index < len(lines) and lines[index].strip() != closing:
                body.append(lines[index])
                index += 1
            language = (fence.group("info").split() or [""])[0].lower()
            start = index - len(body)
            found.append(Block(path, start, language, "\n".join(body) + "\n", tuple(h for _, h in headings)))
        else:
            heading = _HEADING.match(line)
            if heading:
                level = len(heading.group(1))
                headings = [(lvl, text) for lvl, text in headings if lvl < level] + [(level, heading.group(2))]
        index += 1
    return found


def inline_spans(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every inline code span outside fenced blocks."""
    spans: list[tuple[int, str]] = []
    in_fence: str | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = _FENCE.match(line)
        if in_fence:
            if line.strip() == in_fence:
                in_fence = None
            continue
        if fence:
            in_fence = fence.group("fence")
            continue
        spans += [(number, match.group(1)) for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", line)]
    return spans


# -- splitting shell text into simple commands --------------------------------------------------


def _substitution_end(text: str, index: int) -> int:
    """Index just past the $(...) starting at `index`."""
    depth, index = 1, index + 2
    while depth:
        if text[index] in "'\"":
            index = _quoted_end(text, index)
            continue
        if text.startswith("$(", index):
            index = _substitution_end(text, index)
            continue
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        index += 1
    return index


def _quoted_end(text: str, index: int) -> int:
    """Index just past the quoted string starting at `index`."""
    if text[index] == "'":
        return text.index("'", index + 1) + 1
    index += 1
    while text[index] != '"':
        if text[index] == "\\":
            index += 2
        elif text.startswith("$(", index):
            index = _substitution_end(text, index)
        else:
            index += 1
    return index + 1


def _flatten(text: str) -> tuple[str, list[str]]:
    """`text` with every $(...) (quoted or not) replaced by $SUBSTITUTED, and the texts replaced."""
    out: list[str] = []
    inner: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("$(", index):
            end = _substitution_end(text, index)
            inner.append(text[index + 2 : end - 1])
            out.append("$SUBSTITUTED")
            index = end
        elif text[index] == "'":
            end = _quoted_end(text, index)
            out.append(text[index:end])
            index = end
        elif text[index] == "\\":
            out.append(text[index : index + 2])
            index += 2
        elif text[index] == "#" and (not out or out[-1].isspace()):  # a comment, to the end of the line
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
        else:
            out.append(text[index])
            index += 1
    return "".join(out), inner


def split_commands(text: str) -> list[str]:
    """Simple commands of a shell text: split at unquoted newlines, ;, &&, ||, | and &, with
    comments dropped, line continuations joined, and the commands inside $(...) included.

    Enough shell for documentation (no heredocs, no backquotes, no nested quotes in comments)."""
    flat, substituted = _flatten(text.replace("\\\n", " "))
    commands: list[str] = []
    current: list[str] = []
    index = 0

    def flush() -> None:
        command = "".join(current).strip()
        if command:
            commands.append(command)
        current.clear()

    while index < len(flat):
        char = flat[index]
        if char in "'\"":
            end = _quoted_end(flat, index)
            current.append(flat[index:end])
            index = end
        elif char in "\n;|&":
            flush()
            index += 1
        else:
            current.append(char)
            index += 1
    flush()
    for inner in substituted:
        commands += split_commands(inner)
    return commands


SHELL_KEYWORDS = ("do", "then", "else", "elif", "!")


def words(command: str) -> list[str]:
    """The words of a simple command, without leading keywords and VAR=value assignments."""
    tokens = shlex.split(command)
    while tokens and (tokens[0] in SHELL_KEYWORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0])):
        tokens.pop(0)
    return tokens


# -- running a walkthrough ----------------------------------------------------------------------

# What a reader's checkout has that a walkthrough uses. `bin/aiwf` finds `.venv` and `cli` beside
# its own directory, so they are linked too.
CHECKOUT_LINKS = ("bin", "cli", "flows", "examples", "sdk", ".venv")


def walkthrough(path: Path) -> tuple[str, dict[str, str]]:
    """The runnable shell blocks of `path` as one script, and the files its python blocks save."""
    found = [block for block in blocks(path) if block.runnable]
    script = "".join(block.text for block in found if block.language in SHELL_LANGUAGES)
    files = {block.file_name: block.text for block in found if block.file_name}
    return script, files


def run_walkthrough(path: Path, outputs: dict, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the walkthrough of `path` verbatim with bash -euo pipefail, in `cwd` set up like a checkout
    where `make dev` runs: `.local/outputs.json` holds `outputs`."""
    script, files = walkthrough(path)
    assert script, f"{path.name} has no runnable walkthrough"
    (cwd / ".local").mkdir(exist_ok=True)
    (cwd / ".local" / "outputs.json").write_text(json.dumps(outputs))
    for name in CHECKOUT_LINKS:
        if not (cwd / name).exists():
            (cwd / name).symlink_to(ROOT / name)
    for name, text in files.items():
        (cwd / name).write_text(text)
    # In a session of its own, so whatever the script left in the background (a listener that got
    # no request, after a failure) is ended with it and cannot hold a port for the next run.
    # `make install` installs the SDK (sdk/) into .venv, editable; the session's .venv may be shared
    # with other checkouts, so this checkout's SDK comes first on the path. `aws` is the AWS CLI
    # `make install` puts in a virtualenv of its own (it pins botocore exactly).
    python_path = os.pathsep.join(filter(None, [str(ROOT / "sdk"), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "PYTHONPATH": python_path,
        "PATH": f"{ROOT / '.venv-awscli' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
