"""The web console's pure modules (a flow as a graph, a task's states per step, a task page's state
and the branch records it reads), tested with Node's own test runner: `node --test console/test`
(Node is already a test dependency, see package.json)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_modules_pass_their_node_tests():
    node = shutil.which("node")
    assert node, "node is missing: the README's set-up needs Node.js 20+"
    run = subprocess.run([node, "--test", "console/test"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout
