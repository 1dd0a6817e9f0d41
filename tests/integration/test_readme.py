"""The README's walkthrough, every runnable block run verbatim with bash against the local stack.

Conventions for what is runnable: tests/docs/markdown.py. The commands the README shows but that
need a cloud (pulumi, make layer) are checked in tests/docs/test_doc_commands.py.
"""

from __future__ import annotations

import json

from tests.docs.markdown import ROOT, run_walkthrough


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_readme_walkthrough_works_verbatim(stack, tmp_path):
    run = run_walkthrough(ROOT / "README.md", stack.outputs, tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    # 1. curl: registered, SUCCEEDED with the output, listed, full history, 403 without the key, GraphQL history
    registered, final, listed, history, graphql, quick = _json_lines(out)[:6]
    assert registered["flowId"] == "hello"
    assert final["status"] == "SUCCEEDED" and final["output"] == {"greeting": "Hello, Ada!"}
    assert final["taskId"] in [item["taskId"] for item in listed["items"]]
    assert [item["seq"] for item in history["items"]] == list(range(1, final["seq"] + 1))
    assert "\n403\n" in out
    assert [s["seq"] for s in graphql["data"]["getWorkflowHistory"]] == list(range(1, final["seq"] + 1))
    assert quick["status"] == "SUCCEEDED" and quick["output"] == {"greeting": "Hello, Grace!"}  # one round trip
    # 2. the CLI: the flow registered, the routine document filed without approval
    assert "flow document-triage version" in out
    assert '"action": "filed"' in out
    # 3. the approval: the subscriber saw the task end, resume answered, the history shows the wait
    assert "subscription:" in out and " SUCCEEDED done" in out
    assert "WAITING" in out and "escalate" in out
    assert (tmp_path / "notify.json").is_file()
    assert "resumeToken" in json.loads((tmp_path / "notify.json").read_text())
    # 4. a signed-in user of tenant acme: its task ran, and its list holds acme's tasks only
    as_user = _json_lines(out)[-1]
    assert as_user["items"] and {item["tenantId"] for item in as_user["items"]} == {"acme"}, as_user
    assert "signed in as ada (tenant acme)" in out and "signed out" in out
    assert not (tmp_path / ".local" / "session.json").exists()
