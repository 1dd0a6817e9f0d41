"""The README's local walkthrough, run verbatim with bash against the local stack, so it cannot drift."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Five minutes with the local stack", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_walkthrough_works_verbatim(stack, tmp_path):
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "outputs.json").write_text(json.dumps(stack.outputs))

    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _walkthrough()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    registered = json.loads(lines[0])
    assert registered["flowId"] == "hello"
    final = json.loads(lines[1])
    assert final["status"] == "SUCCEEDED" and final["output"] == {"greeting": "Hello, Ada!"}
    listed = json.loads(lines[2])
    assert final["taskId"] in [item["taskId"] for item in listed["items"]]
    history = json.loads(lines[3])["items"]
    assert [item["seq"] for item in history] == list(range(1, final["seq"] + 1))
    assert lines[4] == "403"
