"""The CLI's errors say what is wrong and what to do, in one line: no local stack answering, a
remote API that cannot be reached, a flow file that is not YAML."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from aiwf_sdk import Client, NoLocalStackError, UnavailableError
from cli.errors import ExitCode

ROOT = Path(__file__).resolve().parents[3]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _aiwf(outputs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "bin" / "aiwf"), "--outputs", str(outputs), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def _outputs(tmp_path: Path, host: str) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "taskApiUrl": f"http://{host}/dev",
                "apiKey": "k",
                "graphqlUrl": f"http://{host}/graphql",
                "realtimeUrl": f"ws://{host}/graphql/realtime",
            }
        )
    )
    return path


def test_no_local_stack_is_one_line_saying_to_start_it_and_a_start_is_not_retried(tmp_path: Path):
    url = f"127.0.0.1:{_closed_port()}"
    outputs = _outputs(tmp_path, url)
    for args in (("list",), ("start", "hello"), ("watch", "--flow", "hello")):
        run = _aiwf(outputs, *args)
        assert run.returncode == ExitCode.UNAVAILABLE, run.stderr
        assert run.stderr == f"error: no local stack is answering at http://{url}/dev: start it with make dev\n", args
    client = Client(f"http://{url}/dev", "k")
    try:
        client.tasks.start("hello", {})  # raised at once: retrying against nothing helps no one
    except NoLocalStackError as exc:
        assert exc.code == "UNAVAILABLE"
    else:
        raise AssertionError("a start against nothing succeeded")


def test_a_remote_api_that_cannot_be_reached_names_the_cause_in_one_line():
    client = Client("https://host.invalid/dev", "k")
    try:
        client.flows.page(limit=1)
    except UnavailableError as exc:
        error = exc
    else:
        raise AssertionError("an unknown host answered")
    assert not isinstance(error, NoLocalStackError)
    assert error.message.startswith("cannot reach the task API at https://host.invalid/dev: ")
    assert "\n" not in error.message


def test_a_flow_file_that_is_not_yaml_is_called_a_yaml_error(tmp_path: Path):
    flow = tmp_path / "broken.yaml"
    flow.write_text("id: broken\nsteps: [a\n")
    run = _aiwf(_outputs(tmp_path, f"127.0.0.1:{_closed_port()}"), "flows", "put", str(flow))
    assert run.returncode == ExitCode.BAD_REQUEST
    assert run.stderr.startswith(f"error: the flow file {flow} is not valid YAML: ") and "JSON" not in run.stderr
    inline = _aiwf(_outputs(tmp_path, f"127.0.0.1:{_closed_port()}"), "start", "hello", "--input", "{oops")
    assert inline.returncode == ExitCode.BAD_REQUEST and "is not valid JSON" in inline.stderr
