"""A signed-in user's session (aiwf_sdk.session) against moto's cognito-idp in-process: SRP and
admin sign-in, the 0600 session file, refresh when the ID token expires, sign-out, and requests
sent as the user (its ID token, never the API key too)."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from aiwf_sdk import Client, SessionAuth, SignInError, UserPool, sign_in
from aiwf_sdk import session as sessions
from tests.moto_in_process import moto_without_reset

PASSWORD = "Correct-Horse-9"


def make_pool(tenant: str = "acme", *, username: str = "ada", permanent: bool = True) -> UserPool:
    """A pool as the stage declares it (custom attribute `tenant`; SRP, refresh and admin flows),
    with one user of `tenant`, in moto's cognito-idp (mock_aws must be active)."""
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool_id = cognito.create_user_pool(
        PoolName="aiwf-test", Schema=[{"Name": "tenant", "AttributeDataType": "String", "Mutable": False}]
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="aiwf",
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"],
    )["UserPoolClient"]["ClientId"]
    add_user(pool_id, username, tenant, permanent=permanent)
    return UserPool(pool_id, client_id)


def add_user(pool_id: str, username: str, tenant: str, *, permanent: bool = True) -> None:
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "custom:tenant", "Value": tenant}],
        TemporaryPassword="Temporary-Pass-1",
        MessageAction="SUPPRESS",
    )
    if permanent:
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


@pytest.fixture
def aws() -> Iterator[None]:
    with moto_without_reset():
        yield


def test_srp_sign_in_gives_the_users_tenant_and_a_private_session_file(aws: None, tmp_path: Path) -> None:
    pool = make_pool("acme")
    signed_in = sign_in(pool, "ada", PASSWORD)
    assert (signed_in.username, signed_in.tenant, signed_in.groups) == ("ada", "acme", [])
    assert signed_in.claims["token_use"] == "id" and signed_in.claims["aud"] == pool.client_id
    assert signed_in.expires_at > time.time() + 600 and not signed_in.expired()

    path = tmp_path / "deep" / "session.json"
    signed_in.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = json.loads(path.read_text())
    assert set(kept) == {"userPoolId", "clientId", "username", "idToken", "refreshToken", "expiresAt"}
    assert PASSWORD not in path.read_text()
    assert sessions.load(path, pool) == signed_in


def test_a_wider_file_is_narrowed_when_the_session_is_saved(aws: None, tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    path.write_text("{}")
    path.chmod(0o644)
    sign_in(make_pool(), "ada", PASSWORD).save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_admin_sign_in_uses_admin_user_password_auth(aws: None) -> None:
    pool = make_pool("globex")
    signed_in = sign_in(pool, "ada", PASSWORD, admin=True)
    assert signed_in.tenant == "globex"
    with pytest.raises(SignInError, match="could not sign in") as refused:
        sign_in(pool, "ada", "wrong-password", admin=True)
    assert refused.value.code == "SIGN_IN_FAILED"


def test_unknown_users_and_passwords_to_change_are_refused_with_what_to_do(aws: None) -> None:
    pool = make_pool("acme")
    with pytest.raises(SignInError, match="nobody could not sign in"):
        sign_in(pool, "nobody", PASSWORD)
    add_user(pool.user_pool_id, "grace", "acme", permanent=False)
    with pytest.raises(SignInError, match="new password") as refused:
        sign_in(pool, "grace", "Temporary-Pass-1")
    assert refused.value.code == "NEW_PASSWORD_REQUIRED"


def test_a_session_of_another_pool_or_an_unreadable_file_is_not_used(aws: None, tmp_path: Path) -> None:
    pool = make_pool()
    path = tmp_path / "session.json"
    sign_in(pool, "ada", PASSWORD).save(path)
    other = replace(pool, user_pool_id="us-east-1_other")
    assert sessions.load(path, other) is None
    path.write_text("not json")
    assert sessions.load(path, pool) is None
    assert sessions.load(tmp_path / "none.json", pool) is None


def test_an_expired_id_token_is_refreshed_and_kept(aws: None, tmp_path: Path) -> None:
    pool = make_pool()
    path = tmp_path / "session.json"
    expired = replace(sign_in(pool, "ada", PASSWORD), expires_at=time.time() - 1)
    expired.save(path)
    auth = SessionAuth(expired, pool, path)
    token = auth.id_token()
    assert token != expired.id_token
    assert not auth.session.expired() and auth.session.refresh_token == expired.refresh_token
    kept = sessions.load(path, pool)
    assert kept is not None and kept.id_token == token and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.id_token() == token  # still valid: no second refresh


def test_a_revoked_refresh_token_asks_to_sign_in_again(aws: None) -> None:
    pool = make_pool()
    signed_in = sign_in(pool, "ada", PASSWORD)
    boto3.client("cognito-idp", region_name="us-east-1").admin_user_global_sign_out(
        UserPoolId=pool.user_pool_id, Username="ada"
    )
    with pytest.raises(SignInError, match="aiwf login"):
        SessionAuth(replace(signed_in, expires_at=0), pool).id_token()


def test_requests_go_as_the_user_with_no_api_key(aws: None) -> None:
    pool = make_pool()
    signed_in = sign_in(pool, "ada", PASSWORD)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "nextToken": None})

    with Client("http://api.test/dev", "the-key", transport=httpx.MockTransport(answer)) as as_key:
        as_key.tasks.page()
    auth = SessionAuth(signed_in, pool)
    with Client("http://api.test/dev", "the-key", transport=httpx.MockTransport(answer), auth=auth) as as_user:
        as_user.tasks.page()
    assert seen[0].headers["x-api-key"] == "the-key" and "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == signed_in.id_token and "x-api-key" not in seen[1].headers


def test_the_watcher_of_a_signed_in_client_uses_the_id_token(aws: None) -> None:
    pool = make_pool()
    signed_in = sign_in(pool, "ada", PASSWORD)
    client = Client(
        "http://api.test/dev",
        "the-key",
        graphql_url="http://api.test/graphql",
        realtime_url="ws://api.test/graphql/realtime",
        auth=SessionAuth(signed_in, pool),
    )
    watcher: Any = client.tasks.watcher()
    assert watcher._headers() == {"Authorization": signed_in.id_token}
    assert watcher._subscription_transport().auth.jwt == signed_in.id_token
    assert Client("http://x", "k", graphql_url="g", realtime_url="r").tasks.watcher()._headers() == {"x-api-key": "k"}


def test_sign_out_forgets_the_file(aws: None, tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    sign_in(make_pool(), "ada", PASSWORD).save(path)
    assert sessions.forget(path) is True
    assert not path.exists()
    assert sessions.forget(path) is False


def test_where_sessions_are_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert sessions.session_path(stack="dev") == tmp_path / "aiwf" / "sessions" / "dev.json"
    assert sessions.session_path() == Path(".local") / "session.json"
    assert sessions.session_path(outputs_file=tmp_path / "x" / "outputs.json") == tmp_path / "x" / "session.json"


def test_the_pool_comes_from_the_stack_outputs() -> None:
    outputs = {
        "userPoolId": "eu-west-1_abc",
        "userPoolClientId": "client",
        "awsEndpointUrl": "http://127.0.0.1:5000",
        "awsCredentials": {"accessKeyId": "a", "secretAccessKey": "s", "region": "eu-west-1"},
    }
    pool = UserPool.from_outputs(outputs)
    assert (pool.region, pool.endpoint_url, pool.credentials and pool.credentials["accessKeyId"]) == (
        "eu-west-1",
        "http://127.0.0.1:5000",
        "a",
    )
    with pytest.raises(sessions.StackOutputsError, match="userPoolId"):
        UserPool.from_outputs({"taskApiUrl": "x"})
