"""The web console's pure modules (a flow as a graph, a task's states per step, a task page's state
and the branch records it reads), tested with Node's own test runner: `node --test console/test`
(Node is already a test dependency, see package.json)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_modules_pass_their_node_tests():
    node = shutil.which("node")
    assert node, "node is missing: the README's set-up needs Node.js 20+"
    run = subprocess.run([node, "--test", "console/test"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout


def test_the_consoles_sigv4_signature_is_botocores():
    """An operator's console signs its AppSync requests itself (console/js/sigv4.js, Web Crypto):
    the signature of a POST, with and without a session token, is the one botocore computes."""
    node = shutil.which("node")
    assert node
    body = json.dumps({"query": "query { listFlows { items { flowId } } }", "variables": {}})
    for token in (None, "session-token"):
        script = (
            "import { signedHeaders } from './console/js/sigv4.js';"
            "const h = await signedHeaders({url: 'https://abc.appsync-api.eu-west-1.amazonaws.com/graphql',"
            " headers: {'content-type': 'application/json'}, body: process.argv[1],"
            " credentials: {accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG',"
            " sessionToken: process.argv[2] || undefined},"
            " region: 'eu-west-1', service: 'appsync', now: new Date(Date.UTC(2026, 0, 2, 3, 4, 5))});"
            "console.log(JSON.stringify(h));"
        )
        run = subprocess.run(
            [node, "--input-type=module", "-e", script, body, token or ""],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        signed = json.loads(run.stdout)
        request = AWSRequest(
            method="POST",
            url="https://abc.appsync-api.eu-west-1.amazonaws.com/graphql",
            headers={"content-type": "application/json"},
            data=body.encode(),
        )
        credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token)
        request.context["timestamp"] = "20260102T030405Z"
        signer = SigV4Auth(credentials, "appsync", "eu-west-1")
        request.headers["host"] = "abc.appsync-api.eu-west-1.amazonaws.com"
        request.headers["X-Amz-Date"] = "20260102T030405Z"
        if token:
            request.headers["X-Amz-Security-Token"] = token
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        assert signed["authorization"].endswith(f"Signature={expected}"), (signed, expected)
