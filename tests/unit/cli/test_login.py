"""`aiwf login` / `whoami` / `logout` against moto's cognito-idp in-process: the password comes from
stdin or a prompt (never an argument), the session is kept beside the outputs with mode 0600, and
later commands act as the user, except flow registration, which is an operator's whatever the session."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aiwf_sdk import SessionAuth, SignInError
from cli.app import Context, app
from cli.errors import CliError, ExitCode
from tests.moto_in_process import moto_without_reset
from tests.unit.sdk.test_session import PASSWORD, make_pool


@pytest.fixture
def outputs(tmp_path: Path) -> Iterator[Path]:
    with moto_without_reset():
        pool = make_pool("acme")
        path = tmp_path / "stack" / "outputs.json"
        path.parent.mkdir()
        path.write_text(
            json.dumps(
                {
                    "taskApiUrl": "http://127.0.0.1:1/dev",
                    "apiKey": "k",
                    "userPoolId": pool.user_pool_id,
                    "userPoolClientId": pool.client_id,
                }
            )
        )
        yield path


def aiwf(outputs: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--outputs", str(outputs), *args], input=stdin, catch_exceptions=False)
    return result.exit_code, result.output


def test_login_keeps_a_private_session_and_later_commands_act_as_the_user(outputs: Path) -> None:
    code, shown = aiwf(outputs, "login", "ada", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, shown
    assert "signed in as ada (tenant acme)" in shown
    session_file = outputs.parent / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600

    code, shown = aiwf(outputs, "--json", "whoami")
    assert code == 0 and json.loads(shown)["tenant"] == "acme" and json.loads(shown)["caller"] == "user"

    context = Context(None, outputs, as_json=False)
    assert isinstance(context.client.auth, SessionAuth)
    assert context.operator_client.auth is None  # flows put / retire: never the user's ID token

    code, shown = aiwf(outputs, "logout")
    assert (code, shown.strip()) == (0, "signed out")
    assert not session_file.exists()
    assert Context(None, outputs, as_json=False).client.auth is None
    code, shown = aiwf(outputs, "--json", "whoami")
    assert json.loads(shown) == {"caller": "key", "tenant": "default"}


def test_the_password_is_asked_for_when_not_on_stdin(outputs: Path) -> None:
    code, shown = aiwf(outputs, "login", "ada", stdin=PASSWORD + "\n")
    assert code == 0, shown
    assert "password for ada" in shown and PASSWORD not in shown


def test_the_password_is_never_an_argument(outputs: Path) -> None:
    result = CliRunner().invoke(app, ["--outputs", str(outputs), "login", "ada", PASSWORD])
    assert result.exit_code != 0
    assert not (outputs.parent / "session.json").exists()


def test_a_refused_sign_in_is_exit_code_forbidden_and_keeps_no_session(outputs: Path) -> None:
    with pytest.raises(SignInError) as refused:
        aiwf(outputs, "login", "nobody", "--password-stdin", stdin=PASSWORD + "\n")
    assert CliError.from_sdk(refused.value).code == ExitCode.FORBIDDEN
    assert not (outputs.parent / "session.json").exists()


def test_login_needs_a_user_pool_in_the_outputs(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"taskApiUrl": "http://127.0.0.1:1/dev", "apiKey": "k"}))
    with pytest.raises(Exception, match="userPoolId") as missing:
        aiwf(path, "login", "ada", "--password-stdin", stdin="x\n")
    assert CliError.from_sdk(missing.value).code == ExitCode.CONFIG
