"""The `aiwf` CLI, run as a user runs it (bin/aiwf in a subprocess), against the local stack."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def flow_file(tmp_path):
    document = yaml.safe_load((ROOT / "flows" / "hello.yaml").read_text())
    document["id"] = f"cli-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "flow.yaml"
    path.write_text(yaml.safe_dump(document))
    return document["id"], path


def test_put_start_wait_get_list_history(aiwf, flow_file):
    flow_id, path = flow_file
    assert json.loads(aiwf("--json", "flows", "put", str(path)).stdout) == {"flowId": flow_id, "version": 1}
    assert f"# {flow_id} version 1" in aiwf("flows", "get", flow_id).stdout

    started = json.loads(aiwf("--json", "start", flow_id, "--input", '{"name": "Ada"}', "--wait").stdout)
    assert started["status"] == "SUCCEEDED" and started["output"]["greeting"] == "Hello, Ada!"

    task_id = started["taskId"]
    assert json.loads(aiwf("--json", "get", task_id).stdout)["seq"] == started["seq"]
    listed = json.loads(aiwf("--json", "list", "--flow", flow_id).stdout)
    assert [item["taskId"] for item in listed["items"]] == [task_id]
    history = json.loads(aiwf("--json", "history", task_id).stdout)["items"]
    assert [item["seq"] for item in history] == list(range(1, started["seq"] + 1))
    assert "SUCCEEDED" in aiwf("history", task_id).stdout


def test_input_from_a_file_and_a_failed_task_exits_1(aiwf, flow_file, tmp_path):
    flow_id, path = flow_file
    aiwf("flows", "put", str(path))
    (tmp_path / "input.json").write_text('{"name": "nobody"}')

    result = aiwf("start", flow_id, "--input", f"@{tmp_path / 'input.json'}", "--wait", check_code=1)

    assert "NoName: Cannot greet nobody" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("get", "no-such-task"), 3, "TASK_NOT_FOUND"),
        (("start", "no-such-flow"), 3, "FLOW_NOT_FOUND"),
        (("start", "hello", "--input", "{oops"), 2, "--input is not valid JSON"),
        (("resume", "no-such-task", "--token", "t", "--status", "MAYBE"), 2, "--status must be"),
        (("list", "--status", "NAPPING"), 2, "INVALID_PARAMETER"),
        (("list", "--limit", "0"), 2, "Invalid value for '--limit'"),
        (("list", "--nope"), 2, "No such option: --nope"),
    ],
)
def test_errors_have_a_message_and_a_stable_exit_code(aiwf, args, code, message):
    result = aiwf(*args, check_code=code)
    assert message in result.stderr


def test_an_invalid_flow_lists_each_problem(aiwf, tmp_path):
    (tmp_path / "bad.yaml").write_text("id: bad-flow\nstartAt: nowhere\nsteps: {a: {type: warp}}\n")

    result = aiwf("flows", "put", str(tmp_path / "bad.yaml"), check_code=2)

    assert "INVALID_FLOW" in result.stderr and "/steps/a/type" in result.stderr


def test_a_wrong_api_key_is_a_forbidden_exit(aiwf, stack, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({**stack.outputs, "apiKey": "wrong"}))
    result = subprocess.run(
        [str(ROOT / "bin" / "aiwf"), "--outputs", str(outputs), "list"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 5 and "check the API key" in result.stderr


def test_missing_outputs_file_explains_what_to_do(tmp_path):
    result = subprocess.run(
        [str(ROOT / "bin" / "aiwf"), "--outputs", str(tmp_path / "none.json"), "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 7 and "make dev" in result.stderr


def test_flows_list_and_retire(aiwf, flow_file):
    flow_id, path = flow_file
    aiwf("flows", "put", str(path))

    listed = json.loads(aiwf("--json", "flows", "list", "--all", "--limit", "2").stdout)
    mine = [item for item in listed["items"] if item["flowId"] == flow_id]
    assert len(mine) == 1 and (mine[0]["version"], mine[0]["retired"]) == (1, False)
    assert listed["nextToken"] is None, "--all follows every page"
    assert flow_id in aiwf("flows", "list").stdout

    retired = json.loads(aiwf("--json", "flows", "retire", flow_id).stdout)
    assert retired == {"flowId": flow_id, "version": 1, "retired": True}
    assert "retired" in aiwf("flows", "retire", flow_id).stdout
    refused = aiwf("start", flow_id, check_code=4)
    assert "FLOW_RETIRED" in refused.stderr
    assert "FLOW_NOT_FOUND" in aiwf("flows", "retire", "no-such-flow", check_code=3).stderr

    aiwf("flows", "put", str(path))  # revives it
    assert json.loads(aiwf("--json", "start", flow_id, "--input", '{"name": "Ada"}').stdout)["flowId"] == flow_id


def test_list_shows_whole_task_ids_even_in_a_narrow_terminal(stack, flow_file, tmp_path):
    flow_id, path = flow_file
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(stack.outputs))

    def run(*args: str) -> str:
        command = [str(ROOT / "bin" / "aiwf"), "--outputs", str(outputs), *args]
        env = {**os.environ, "COLUMNS": "60"}
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run("flows", "put", str(path))
    task_id = json.loads(run("--json", "start", flow_id, "--input", '{"name": "Ada"}'))["taskId"]
    assert task_id in run("list", "--flow", flow_id), "the id is copied into get / resume: never cut"
    assert task_id in run("watch", task_id, "--timeout", "30"), "nor in the live board of `aiwf watch`"


def test_run_answers_with_how_a_short_flow_ended_in_one_call(aiwf, flow_file):
    flow_id, path = flow_file
    aiwf("flows", "put", str(path))
    ran = json.loads(aiwf("--json", "run", flow_id, "--input", '{"name": "Grace"}').stdout)
    assert ran["status"] == "SUCCEEDED" and ran["output"]["greeting"] == "Hello, Grace!"
    assert "Hello, Grace!" in aiwf("run", flow_id, "--input", '{"name": "Grace"}').stdout


def test_run_follows_a_task_that_outlives_the_quick_run_and_exits_1_when_it_fails(aiwf, tmp_path):
    flow_id = f"cli-run-{uuid.uuid4().hex[:8]}"
    document = {
        "id": flow_id,
        "startAt": "w",
        "steps": {"w": {"type": "wait_for_event", "timeoutSeconds": 3, "next": "ok"}, "ok": {"type": "succeed"}},
    }
    path = tmp_path / "wait.yaml"
    path.write_text(yaml.safe_dump(document))
    aiwf("flows", "put", str(path))
    # The quick run answers WAITING after 2 s; `run` follows until the wait times out.
    ended = aiwf("--json", "run", flow_id, "--timeout", "2", check_code=None)
    assert ended.returncode == 6 and "still WAITING" in ended.stderr, ended.stdout + ended.stderr
    failed = aiwf("--json", "run", flow_id, "--timeout", "60", check_code=1)
    state = json.loads(failed.stdout)
    assert state["status"] == "FAILED" and state["error"]["errorName"] == "States.Timeout", state
