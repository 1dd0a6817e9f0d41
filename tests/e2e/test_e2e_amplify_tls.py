"""Unmodified AWS Amplify JS v6 in Node, against the local stack's TLS twin.

Amplify derives `wss://` from any GraphQL URL and never speaks `ws://`, so this is the client the
TLS twin exists for. `amplify_tls.mjs` runs with nothing but the stack's outputs, the local
credentials and `NODE_EXTRA_CA_CERTS` (docs/local.md), and reports what Amplify got back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import yaml

from local.iam_enforcement import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from tests.e2e.conftest import Deployed, in_order_without_gaps, task_id_for

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("amplify_tls.mjs")
HELLO = REPO_ROOT / "flows" / "hello.yaml"


def _amplify_version() -> str:
    installed = json.loads((REPO_ROOT / "node_modules" / "aws-amplify" / "package.json").read_text())
    return installed["version"]


def test_amplify_js_queries_subscribes_and_signs_over_the_tls_twin(deployed: Deployed) -> None:
    node = shutil.which("node")
    assert node, "Node.js 20+ is needed (README: Set-up)"
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-amplify"]
    assert _amplify_version() == pinned and pinned.startswith("6."), "run `make install` (npm ci)"

    tls = deployed.outputs["tls"]
    flow = yaml.safe_load(HELLO.read_text())
    flow["id"] = f"amplify-tls-{uuid.uuid4().hex[:8]}"
    name = f"amplify-{uuid.uuid4().hex}"
    task_id = task_id_for(name)
    scenario = {
        "graphqlUrl": tls["graphqlUrl"],
        "region": deployed.stack.region,
        "apiKey": deployed.outputs["apiKey"],
        # the local credentials (the stack's admin user: a key without a session token)
        "credentials": {"accessKeyId": LOCAL_ACCESS_KEY_ID, "secretAccessKey": LOCAL_SECRET_ACCESS_KEY},
        "flow": flow,
        "input": {"name": "Ada"},
        "taskName": name,
        "taskId": task_id,
    }
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": tls["caBundle"]}
    env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)  # verification stays on: the CA is what makes it pass
    run = subprocess.run(
        [node, str(SCRIPT), json.dumps(scenario)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])

    # IAM mode, signed by Amplify with the local credentials: the IAM-only mutation and a query.
    assert report["iamPutFlow"]["errors"] is None, report["iamPutFlow"]
    version = report["iamPutFlow"]["data"]["putFlow"]["version"]
    assert report["iamPutFlow"]["data"]["putFlow"]["flowId"] == flow["id"]
    expected_flow = {"flowId": flow["id"], "version": version, "retired": False}
    assert report["iamGetFlow"] == {"data": {"getFlow": expected_flow}, "errors": None}
    # API key mode: the same query answers, the IAM-only mutation is refused as AppSync refuses it.
    assert report["apiKeyGetFlow"] == {"data": {"getFlow": expected_flow}, "errors": None}
    refused = report["apiKeyPutFlow"]["errors"]
    assert refused and refused[0]["errorType"] == "Unauthorized", report["apiKeyPutFlow"]

    # The subscription (taskId filter, over wss://) saw the whole task, in seq order, as recorded.
    assert report["startTask"]["errors"] is None, report["startTask"]
    assert report["startTask"]["data"]["startTask"]["taskId"] == task_id
    states = in_order_without_gaps(report["states"])
    assert {state["taskId"] for state in states} == {task_id}
    assert states[0]["status"] == "PENDING" and states[-1]["status"] == "SUCCEEDED"
    assert len(states) >= 3, states  # a task of several steps, not just its start and its end
    assert report["history"]["errors"] is None
    assert states == report["history"]["data"]["getWorkflowHistory"]
    assert json.loads(states[-1]["output"]) == {"greeting": "Hello, Ada!", "name": "Ada"}
