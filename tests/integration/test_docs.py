"""The runnable walkthroughs of docs/*.md, run verbatim with bash against the local stack.

The README's walkthrough runs in test_readme.py (with checks of what it prints); every command of
every doc, runnable or not, is checked without a cloud in tests/docs/test_doc_commands.py.
Conventions: tests/docs/markdown.py.
"""

from __future__ import annotations

import json

import pytest

from tests.docs.markdown import ROOT, blocks, run_walkthrough

WALKTHROUGHS = [path for path in sorted((ROOT / "docs").glob("*.md")) if any(b.runnable for b in blocks(path))]


def test_the_docs_have_walkthroughs_to_run():
    assert ROOT / "docs" / "operations.md" in WALKTHROUGHS


def _operations_printed_the_execution_of_its_task(stack, stdout: str) -> None:
    # the flows walkthrough: retired (a start is 409 FLOW_RETIRED), then revived and listed active
    assert '"retired": true' in stdout and '"FLOW_RETIRED"' in stdout and "\n409\n" in stdout
    assert "'flowId': 'retire-demo'" in stdout and "'retired': False" in stdout
    arn = stdout.strip().splitlines()[-1]
    execution_arn, task_id = arn.rsplit(":", 1)
    assert execution_arn == stack.outputs["stateMachineArn"].replace(":stateMachine:", ":execution:")
    execution = stack.client("stepfunctions").describe_execution(executionArn=arn)
    assert execution["name"] == task_id and execution["status"] == "SUCCEEDED"


def _graphql_control_printed_a_start_an_error_code_and_flows(stack, stdout: str) -> None:
    started, unknown, flows = (json.loads(line) for line in stdout.strip().splitlines()[-3:])
    assert started["data"]["startTask"]["status"] in ("PENDING", "RUNNING") and "errors" not in started
    assert [e["errorType"] for e in unknown["errors"]] == ["FLOW_NOT_FOUND"]
    assert flows["data"]["listFlows"]["items"]


def _local_printed_the_aws_cli_answers_then_answered_over_tls_only_with_the_ca(stack, stdout: str) -> None:
    # 1. the AWS CLI at the awsEndpointUrl output: the stack's tables, then the task's last event
    all_lines = stdout.strip().splitlines()
    end = all_lines.index("ExecutionSucceeded")
    tables = {name for line in all_lines[:end] for name in line.split()}
    assert {"aiwf-dev-tasks", "aiwf-dev-history", "aiwf-dev-flows"} <= tables, stdout
    # 2. TLS: the same APIs over https with the CA, refused without it
    lines = all_lines[end + 1 :]
    flows, graphql = json.loads(lines[0]), json.loads(lines[1])
    assert flows["items"] and graphql["data"]["listFlows"]["items"]
    assert lines[2] == "curl without the CA: exit 60"
    assert lines[3:] == ["200", "200", "200"]  # urllib (SSL_CERT_FILE), requests, Node (NODE_EXTRA_CA_CERTS)


def _sdk_built_deployed_ran_and_approved(stack, stdout: str) -> None:
    assert (
        '{"type": "llm", "model": "local/demo", "prompt": "Language of: {{ input.text }}", "resultPath": "lang", '
        in stdout
    )
    assert "  s_english -- default --> s_refuse\n" in stdout, "the Mermaid picture"
    assert "Llm('detect'): max_tokens: 0 is less than the minimum of 1" in stdout, "a mistake named by its Python step"
    assert "Deployment(flow_id='sdk-demo', version=1, created=True)\n" in stdout
    assert "Deployment(flow_id='sdk-demo', version=1, created=False)\n" in stdout, "unchanged: no new version"
    assert "SUCCEEDED en\n" in stdout and "404 TASK_NOT_FOUND\n" in stdout
    assert "approved approve as ada" in stdout and "status: SUCCEEDED" in stdout
    output = json.loads(stdout.split("output: ", 1)[1].splitlines()[0])
    assert output == {"label": "urgent", "action": "escalated", "approvedBy": "ada"}


WHAT_THEY_PRINT = {
    "local.md": _local_printed_the_aws_cli_answers_then_answered_over_tls_only_with_the_ca,
    "sdk.md": _sdk_built_deployed_ran_and_approved,
    "operations.md": _operations_printed_the_execution_of_its_task,
    "workflow-state-api.md": _graphql_control_printed_a_start_an_error_code_and_flows,
}


@pytest.mark.parametrize("path", WALKTHROUGHS, ids=lambda path: path.name)
def test_doc_walkthrough_works_verbatim(stack, tmp_path, path):
    run = run_walkthrough(path, stack.outputs, tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    if path.name in WHAT_THEY_PRINT:
        WHAT_THEY_PRINT[path.name](stack, run.stdout)
