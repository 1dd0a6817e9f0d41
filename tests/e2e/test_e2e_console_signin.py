"""The console's sign-in in a real browser (chromium, as tests/e2e/test_e2e_console.py): a person
signs in to a user pool of the embedded AWS with SRP (the vendored amazon-cognito-identity-js),
the console then acts as that user (its ID token on GraphQL over HTTP and in the real-time
handshake, never the API key), shows who is signed in and its tenant, and signs out.

`test_a_signed_in_user_sees_its_tenants_task_only` needs the stage's own user pool (outputs
`userPoolId`, `userPoolClientId`) and APIs that take its ID tokens; it runs as soon as the stack
has them.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from aiwf_sdk import Client, SessionAuth, UserPool, sign_in
from tests.e2e.conftest import Deployed
from tests.e2e.test_e2e_console import WAIT_MS, browser, register, wait_flow  # noqa: F401 (the fixture)
from tests.integration.stub_server import StubServer, start_stub

PASSWORD = "Signed-in-9"


def cognito(deployed: Deployed) -> Any:
    """The embedded AWS's Cognito, as the local admin (the `awsCredentials` output)."""
    credentials = deployed.outputs["awsCredentials"]
    return boto3.client(
        "cognito-idp",
        endpoint_url=deployed.outputs["awsEndpointUrl"],
        region_name=credentials["region"],
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
    )


def add_user(deployed: Deployed, pool_id: str, tenant: str) -> str:
    """A user of `tenant`, created as docs/security.md says (admin-create-user, then a permanent password)."""
    username = f"user-{uuid.uuid4().hex[:8]}"
    client = cognito(deployed)
    client.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "custom:tenant", "Value": tenant}],
        MessageAction="SUPPRESS",
    )
    client.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return username


@pytest.fixture
def own_pool(deployed: Deployed) -> dict[str, str]:
    """A user pool of this test's own in the embedded AWS (the stage's may not exist yet)."""
    client = cognito(deployed)
    pool_id = client.create_user_pool(
        PoolName=f"console-signin-{uuid.uuid4().hex[:8]}",
        Schema=[{"Name": "tenant", "AttributeDataType": "String", "Mutable": False}],
    )["UserPool"]["Id"]
    client_id = client.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="console",
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return {"userPoolId": pool_id, "userPoolClientId": client_id}


@pytest.fixture
def fresh(browser: Browser) -> Iterator[Page]:  # noqa: F811 (the browser fixture)
    """A tab that has chosen no caller: a stage with a user pool asks for a sign-in."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"the page raised: {errors}"


def until(page: Page, holds: Any, what: str) -> None:
    """Let the page run until `holds()` (what it records arrives through Playwright's events)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not holds():
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(50)


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_user_signs_in_and_the_console_acts_as_that_user(deployed: Deployed, own_pool: dict[str, str], fresh: Page):
    username = add_user(deployed, own_pool["userPoolId"], "acme")
    console = deployed.outputs["consoleUrl"]

    def with_pool(route: Any) -> None:  # the stage's config, with this test's pool
        config = route.fetch().json()
        route.fulfill(json={**config, **own_pool}, headers={"cache-control": "no-store"})

    fresh.route(f"{console}config.json", with_pool)
    graphql: list[Request] = []
    fresh.on(
        "request", lambda request: graphql.append(request) if request.url == deployed.outputs["graphqlUrl"] else None
    )
    sockets: list[str] = []
    fresh.on("websocket", lambda socket: sockets.append(socket.url))

    fresh.goto(f"{console}#/tasks")
    expect(fresh.locator("#signin-username")).to_be_visible(timeout=WAIT_MS)
    expect(fresh.locator("#connection")).to_have_text("not connected")
    assert not graphql  # nothing is asked before someone signs in
    fresh.fill("#signin-username", username)
    fresh.fill("#signin-password", "not-the-password")
    fresh.get_by_role("button", name="Sign in").click()
    expect(fresh.locator(".errors")).to_contain_text("Incorrect username or password", timeout=WAIT_MS)
    assert not graphql
    fresh.fill("#signin-password", PASSWORD)
    fresh.get_by_role("button", name="Sign in").click()

    expect(fresh.locator("#who-caller")).to_have_text(f"{username} · tenant acme", timeout=WAIT_MS)
    expect(fresh.locator("#who-caller")).to_have_attribute("data-kind", "user")
    until(fresh, lambda: graphql and sockets, "the tasks page asked nothing or opened no real-time connection")
    for request in graphql:
        headers = request.headers
        assert "x-api-key" not in headers, headers
        token_claims = claims(headers["authorization"])
        assert (token_claims["token_use"], token_claims["custom:tenant"], token_claims["aud"]) == (
            "id",
            "acme",
            own_pool["userPoolClientId"],
        )
    header = json.loads(base64.b64decode(parse_qs(urlparse(sockets[-1]).query)["header"][0]))
    assert set(header) == {"host", "Authorization"} and claims(header["Authorization"])["custom:tenant"] == "acme"
    stored = fresh.evaluate(
        "[Object.keys(sessionStorage).filter((k) => k.startsWith('CognitoIdentityServiceProvider')).length,"
        " localStorage.length]"
    )
    assert stored[0] > 0 and stored[1] == 0  # the tokens live in this tab's session only

    fresh.get_by_role("button", name="Sign out").click()
    expect(fresh.locator("#signin-username")).to_be_visible(timeout=WAIT_MS)
    assert fresh.evaluate("Object.keys(sessionStorage).filter((k) => k.endsWith('.idToken')).length") == 0
    fresh.reload()
    expect(fresh.locator("#signin-username")).to_be_visible(timeout=WAIT_MS)


def test_the_api_key_can_be_chosen_instead_of_a_sign_in(deployed: Deployed, own_pool: dict[str, str], fresh: Page):
    console = deployed.outputs["consoleUrl"]
    fresh.route(f"{console}config.json", lambda route: route.fulfill(json={**route.fetch().json(), **own_pool}))
    fresh.goto(f"{console}#/tasks")
    expect(fresh.locator("#signin-username")).to_be_visible(timeout=WAIT_MS)
    fresh.click("#signin-use-key")
    expect(fresh.locator("#who-caller")).to_have_text("API key · tenant default", timeout=WAIT_MS)
    expect(fresh.locator("#connection")).to_have_text("live", timeout=WAIT_MS)


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    server = start_stub()
    yield server
    server.server.shutdown()


def test_a_signed_in_user_sees_its_tenants_task_only(deployed: Deployed, fresh: Page, stub: StubServer):
    if not deployed.outputs.get("userPoolId"):
        pytest.skip("the stack has no user pool yet (outputs userPoolId): the integrator's merge must run this")
    pool = UserPool.from_outputs(deployed.outputs)
    username = add_user(deployed, pool.user_pool_id, f"t-{uuid.uuid4().hex[:6]}")
    flow_id = register(deployed, wait_flow(f"console-tenant-{uuid.uuid4().hex[:8]}", stub.reply("/n", (204, ""))))
    signed_in = sign_in(pool, username, PASSWORD)
    with Client.from_stack_outputs(deployed.outputs, auth=SessionAuth(signed_in, pool)) as as_user:
        mine = as_user.tasks.start(flow_id, {}).task_id
    with Client.from_stack_outputs(deployed.outputs) as as_key:
        others = as_key.tasks.start(flow_id, {}).task_id  # tenant default

    fresh.goto(f"{deployed.outputs['consoleUrl']}#/tasks?flow={flow_id}")
    fresh.fill("#signin-username", username)
    fresh.fill("#signin-password", PASSWORD)
    fresh.get_by_role("button", name="Sign in").click()
    expect(fresh.locator("#who-caller")).to_have_text(f"{username} · tenant {signed_in.tenant}", timeout=WAIT_MS)
    fresh.goto(f"{deployed.outputs['consoleUrl']}#/tasks?flow={flow_id}")
    expect(fresh.locator(f'tr[data-task="{mine}"]')).to_be_visible(timeout=WAIT_MS)
    expect(fresh.locator(f'tr[data-task="{others}"]')).to_have_count(0)


def test_an_operator_signs_every_request_with_sigv4(deployed: Deployed, fresh: Page, stub: StubServer):
    """Operator credentials entered in Settings: each GraphQL request and the real-time handshake are
    signed with SigV4 in the page (Web Crypto) and AppSync's IAM mode accepts them; no key is sent."""
    flow_id = register(deployed, wait_flow(f"console-operator-{uuid.uuid4().hex[:8]}", stub.reply("/o", (204, ""))))
    task_id = deployed.start(flow_id, {}, f"operator-{uuid.uuid4().hex[:8]}")["taskId"]
    graphql: list[Request] = []
    fresh.on(
        "request", lambda request: graphql.append(request) if request.url == deployed.outputs["graphqlUrl"] else None
    )
    sockets: list[str] = []
    fresh.on("websocket", lambda socket: sockets.append(socket.url))
    fresh.goto(f"{deployed.outputs['consoleUrl']}#/settings")
    credentials = deployed.outputs["awsCredentials"]
    fresh.fill("#settings-access-key", credentials["accessKeyId"])
    fresh.fill("#settings-secret-key", credentials["secretAccessKey"])
    fresh.get_by_role("button", name="Act as this operator").click()
    expect(fresh.locator("#who-caller")).to_have_attribute("data-kind", "operator", timeout=WAIT_MS)
    fresh.goto(f"{deployed.outputs['consoleUrl']}#/tasks?flow={flow_id}")
    expect(fresh.locator(f'tr[data-task="{task_id}"] td.status')).to_have_text("waiting", timeout=WAIT_MS)
    expect(fresh.locator("#connection")).to_have_attribute("data-subscriptions", "1", timeout=WAIT_MS)
    assert graphql and all(
        r.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=") and "x-api-key" not in r.headers
        for r in graphql
    )
    header = json.loads(base64.b64decode(parse_qs(urlparse(sockets[-1]).query)["header"][0]))
    assert header["authorization"].startswith("AWS4-HMAC-SHA256 ") and "x-api-key" not in header
    assert deployed.rest("POST", f"/tasks/{task_id}/cancel", json={}).status_code == 202
    expect(fresh.locator(f'tr[data-task="{task_id}"] td.status')).to_have_text("aborted", timeout=WAIT_MS)
