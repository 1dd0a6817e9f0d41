"""The web console in a real browser: Debian's chromium driven by Playwright's Python API against
the session's local stack (tests/conftest.py), through `consoleUrl` and nothing else.

The page is the only client of the task under test once it is open: each test makes the task move
(a stub system answers or releases a held call) and waits for what the page shows, with Playwright's
own waiting (no sleeps). `make install` installs chromium; without it these tests fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

import pytest
import requests
import yaml
from playwright.sync_api import Browser, Page, WebSocketRoute, expect, sync_playwright

from local.console import CONFIG_KEYS, VENDORED
from tests.e2e.conftest import REPO_ROOT, Deployed
from tests.integration.stub_server import StubServer, start_stub

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000
SCREENSHOT = "console-task.png"
DOCS_SCREENSHOT = REPO_ROOT / "docs" / "images" / SCREENSHOT


def artifact_dir() -> Path:
    """Where the browser tests leave what a person looks at (CONSOLE_ARTIFACTS, default build/artifacts)."""
    path = Path(os.environ.get("CONSOLE_ARTIFACTS") or REPO_ROOT / "build" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    server = start_stub()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def browser(deployed: Deployed) -> Iterator[Browser]:
    """Debian's chromium, never a browser Playwright downloads (`make install` installs it)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make install` installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


# The page acts with the API key (tenant default), as the tasks these tests start with it: a stage
# with a user pool otherwise asks for a sign-in first (tests/e2e/test_e2e_console_signin.py).
AS_API_KEY = "sessionStorage.setItem('aiwf.console.caller', JSON.stringify({kind: 'key'}))"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(AS_API_KEY)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"the page raised: {errors}"


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def flow(text: str, **values: str) -> dict[str, Any]:
    """A flow document written as YAML, with `$name` placeholders (the flow's own templates use {{ }})."""
    return yaml.safe_load(Template(text).substitute(values))


HELD_FETCH = """
id: $id
startAt: fetch
steps:
  fetch: {type: http, url: "$url", timeoutSeconds: 60, resultPath: r, next: shape}
  shape: {type: transform, value: {got: "{{ r.ok }}"}, resultPath: s, next: done}
  done: {type: succeed, outputPath: r}
"""

GRAPH = """
id: $id
startAt: prepare
steps:
  prepare: {type: transform, value: {x: 1}, resultPath: doc, next: route, catch: oops}
  route: {type: choice, choices: [{path: doc.x, equals: 1, next: fan}], default: oops}
  fan:
    type: parallel
    branches:
      - {id: a, startAt: a1, steps: {a1: {type: succeed}}}
      - {id: b, startAt: b1, steps: {b1: {type: succeed}}}
    next: done
  done: {type: succeed}
  oops: {type: fail, error: Oops}
"""

PARALLEL = """
id: $id
startAt: prepare
steps:
  prepare: {type: transform, value: {text: "{{ input.text }}"}, resultPath: doc, next: fanout}
  fanout:
    type: parallel
    onBranchError: continue
    branches:
      - id: summary
        startAt: summarise
        steps:
          summarise: {type: llm, model: local, prompt: "reply: short", resultPath: s, next: ok}
          ok: {type: succeed, outputPath: s}
      - id: review
        startAt: approve
        steps:
          approve: {type: wait_for_event, timeoutSeconds: 600, notify: {url: "$notify"}, next: approved}
          approved: {type: succeed}
      - id: export
        startAt: job
        steps:
          job:
            type: poll
            check: {type: http, url: "$job"}
            until: {path: state, equals: done}
            intervalSeconds: 1
            maxAttempts: 600
            next: exported
          exported: {type: succeed}
    resultPath: results
    next: route
  route: {type: choice, choices: [{path: doc.text, equals: "", next: empty}], default: done}
  empty: {type: fail, error: EmptyDocument, cause: nothing to do}
  done: {type: succeed, outputPath: results}
"""


def register(deployed: Deployed, document: dict[str, Any]) -> str:
    response = deployed.rest("PUT", f"/flows/{document['id']}", json=document)
    assert response.status_code == 201, response.text
    return document["id"]


def start(deployed: Deployed, flow_id: str, task_input: dict[str, Any] | None = None) -> str:
    response = deployed.rest("POST", "/tasks", json={"flowId": flow_id, "input": task_input or {}})
    assert response.status_code == 201, response.text
    return response.json()["taskId"]


def state(deployed: Deployed, task_id: str) -> dict[str, Any]:
    return deployed.rest("GET", f"/tasks/{task_id}").json()


def until(deployed: Deployed, task_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = state(deployed, task_id)
        if current["status"] == status:
            return current
        assert time.monotonic() < deadline, f"task {task_id} is {current['status']}, waited for {status}"
        time.sleep(0.05)


def subscribed(page: Page) -> None:
    """AppSync acknowledged the page's subscription (start_ack): no later change can slip by."""
    expect(page.locator("#connection")).to_have_attribute("data-subscriptions", "1", timeout=WAIT_MS)


def node(page: Page, node_id: str) -> Any:
    return page.locator(f'[data-node="{node_id}"]')


def open_task(page: Page, deployed: Deployed, task_id: str) -> None:
    page.goto(f"{deployed.outputs['consoleUrl']}#/tasks/{task_id}")
    expect(page.locator(".flow-graph")).to_be_visible(timeout=WAIT_MS)
    subscribed(page)


def wait_flow(flow_id: str, notify: str) -> dict[str, Any]:
    return {
        "id": flow_id,
        "startAt": "prepare",
        "steps": {
            "prepare": {"type": "transform", "value": {"n": 1}, "resultPath": "doc", "next": "approve"},
            "approve": {
                "type": "wait_for_event",
                "timeoutSeconds": 600,
                "notify": {"url": notify},
                "resultPath": "approval",
                "next": "done",
            },
            "done": {"type": "succeed", "outputPath": "approval"},
        },
    }


def test_the_task_list_shows_a_started_task_and_follows_it_live(deployed: Deployed, page: Page, stub: StubServer):
    flow_id = register(deployed, wait_flow(_id("console-list"), stub.reply(f"/{_id('n')}", (204, ""))))
    page.goto(f"{deployed.outputs['consoleUrl']}#/tasks?flow={flow_id}")
    expect(page.locator("#filter-flow")).to_have_value(flow_id, timeout=WAIT_MS)
    subscribed(page)

    task_id = start(deployed, flow_id)
    row = page.locator(f'tr[data-task="{task_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.locator("td.status")).to_have_text("waiting", timeout=WAIT_MS)
    expect(row.locator("td.step")).to_have_text("approve")

    # the row follows the task without a reload: only the subscription can tell the page
    assert deployed.rest("POST", f"/tasks/{task_id}/cancel", json={"reason": "list test"}).status_code == 202
    expect(row.locator("td.status")).to_have_text("aborted", timeout=WAIT_MS)


def test_a_task_page_turns_a_step_from_running_to_done_as_the_task_moves(
    deployed: Deployed, page: Page, stub: StubServer
):
    path = f"/{_id('slow')}"
    gate = stub.hold(path)
    flow_id = register(deployed, flow(HELD_FETCH, id=_id("console-moves"), url=stub.url + path))
    try:
        task_id = start(deployed, flow_id)
        stub.wait_for(path)  # the step is running: its call is held
        open_task(page, deployed, task_id)
        expect(node(page, "fetch")).to_have_attribute("data-state", "running", timeout=WAIT_MS)
        expect(node(page, "fetch").locator(".node-state")).to_have_text("running")
        expect(node(page, "done")).to_have_attribute("data-state", "not-reached")
    finally:
        gate.set()
    expect(node(page, "fetch")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    expect(node(page, "done")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    expect(page.locator('[data-field="status"]')).to_have_text("succeeded")
    expect(page.locator(".task-output")).to_contain_text('"ok": true')


def test_a_waiting_task_resumed_from_the_page_succeeds(deployed: Deployed, page: Page, stub: StubServer):
    notify = f"/{_id('notify')}"
    flow_id = register(deployed, wait_flow(_id("console-resume"), stub.reply(notify, (204, ""))))
    task_id = start(deployed, flow_id)
    token = stub.wait_for(notify)[0].body["resumeToken"]
    open_task(page, deployed, task_id)
    expect(node(page, "approve")).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)

    # a wrong token first: the page shows the API's own answer (the REST code is GraphQL's errorType)
    wrong = deployed.rest("PUT", f"/tasks/{task_id}", json={"resumeToken": "not-the-token", "status": "SUCCEEDED"})
    assert wrong.status_code == 403, wrong.text
    page.fill("#resume-token", "not-the-token")
    page.click("#resume-button")
    expect(page.locator("#action-errors .error-type")).to_have_text(wrong.json()["error"]["code"], timeout=WAIT_MS)
    expect(page.locator("#action-errors .error-message")).to_have_text(wrong.json()["error"]["message"])

    page.fill("#resume-token", token)
    page.fill("#resume-output", json.dumps({"approved": True, "by": "console"}))
    page.click("#resume-button")
    expect(page.locator('[data-field="status"]')).to_have_text("succeeded", timeout=WAIT_MS)
    expect(node(page, "approve")).to_have_attribute("data-state", "done")
    expect(page.locator(".task-output")).to_contain_text('"by": "console"')
    final = state(deployed, task_id)
    assert (final["status"], final["output"]) == ("SUCCEEDED", {"approved": True, "by": "console"})


def test_cancel_and_redrive_from_the_page_change_the_state(deployed: Deployed, page: Page, stub: StubServer):
    notify = f"/{_id('notify')}"
    flow_id = register(deployed, wait_flow(_id("console-control"), stub.reply(notify, (204, ""))))
    task_id = start(deployed, flow_id)
    stub.wait_for(notify)
    open_task(page, deployed, task_id)
    expect(node(page, "approve")).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)

    page.fill("#cancel-reason", "stopped from the console")
    page.click("#cancel-button")
    expect(page.locator('[data-field="status"]')).to_have_text("aborted", timeout=WAIT_MS)
    expect(node(page, "approve")).to_have_attribute("data-state", "cancelled")
    expect(page.locator(".error-summary")).to_contain_text("Cancelled: stopped from the console")
    assert state(deployed, task_id)["status"] == "ABORTED"

    page.click("#redrive-button")
    # the redriven task goes back to its wait (a second notification), seen live on the page
    expect(node(page, "approve")).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    expect(page.locator('[data-field="redrives"]')).to_have_text("1")
    stub.wait_for(notify, count=2)
    redriven = until(deployed, task_id, "WAITING")
    assert redriven["redriveCount"] == 1

    # redriving a task that is not final: the API's 409 code, as GraphQL's errorType
    page.reload()
    expect(page.locator(".flow-graph")).to_be_visible(timeout=WAIT_MS)
    assert page.locator("#redrive-button").count() == 0
    page.fill("#cancel-reason", "done testing")
    page.click("#cancel-button")
    expect(page.locator('[data-field="status"]')).to_have_text("aborted", timeout=WAIT_MS)


def test_a_dropped_subscription_is_caught_up_from_history(deployed: Deployed, page: Page, stub: StubServer):
    path = f"/{_id('slow')}"
    gate = stub.hold(path)
    flow_id = register(deployed, flow(HELD_FETCH, id=_id("console-gap"), url=stub.url + path))
    cut = {"on": False}
    sockets: list[WebSocketRoute] = []

    def relay(ws: WebSocketRoute) -> None:
        if cut["on"]:
            ws.close()  # the network is down: every reconnection attempt fails
            return
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(lambda url: url.endswith("/graphql/realtime") or "/graphql/realtime?" in url, relay)
    history_queries: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: (
            history_queries.append(request.post_data_json)
            if request.method == "POST" and "getWorkflowHistory" in (request.post_data or "")
            else None
        ),
    )
    try:
        task_id = start(deployed, flow_id)
        stub.wait_for(path)
        open_task(page, deployed, task_id)
        expect(node(page, "fetch")).to_have_attribute("data-state", "running", timeout=WAIT_MS)
        seen_seq = int(page.locator('[data-field="seq"]').inner_text())
        cut["on"] = True
        sockets[-1].close()
        expect(page.locator("#connection")).to_have_text("reconnecting…", timeout=WAIT_MS)
        before_history = len(history_queries)
    finally:
        gate.set()
    until(deployed, task_id, "SUCCEEDED")  # every change happens while the page is cut off
    assert node(page, "fetch").get_attribute("data-state") == "running"
    cut["on"] = False
    expect(node(page, "done")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    expect(page.locator('[data-field="status"]')).to_have_text("succeeded")
    final_seq = state(deployed, task_id)["seq"]
    rows = page.locator(".history tr[data-seq]").evaluate_all("rows => rows.map(r => Number(r.dataset.seq))")
    assert rows == list(range(1, final_seq + 1))
    after = [q["variables"]["a"] for q in history_queries[before_history:] if q["variables"]["t"] == task_id]
    assert after and after[0] >= seen_seq, f"caught up with afterSeq {after}, had seen seq {seen_seq}"


def test_a_flow_page_draws_every_step_and_edge_and_works_by_keyboard_and_narrow(
    deployed: Deployed, page: Page, stub: StubServer
):
    flow_id = register(deployed, flow(GRAPH, id=_id("console-graph")))
    register(deployed, {**wait_flow(flow_id, stub.url + "/unused")})  # version 2
    page.goto(f"{deployed.outputs['consoleUrl']}#/flows/{flow_id}?version=1")
    expect(node(page, "fan")).to_be_visible(timeout=WAIT_MS)
    types = {"prepare": "transform", "route": "choice", "fan": "parallel", "fan/a/a1": "succeed", "oops": "fail"}
    for node_id, step_type in types.items():
        expect(node(page, node_id).locator(".node-type")).to_have_text(step_type)
    edges = page.locator(".edge").evaluate_all("es => es.map(e => [e.dataset.kind, e.dataset.from, e.dataset.to])")
    assert sorted(map(tuple, edges)) == sorted(
        [
            ("next", "prepare", "route"),
            ("catch", "prepare", "oops"),
            ("choice", "route", "fan"),
            ("default", "route", "oops"),
            ("next", "fan", "done"),
            ("branch", "fan", "fan/a/a1"),
            ("branch", "fan", "fan/b/b1"),
        ]
    )
    expect(page.locator(".versions a")).to_have_text(["v2 (latest)", "v1"])

    # keyboard: Tab reaches the graph's steps, Enter shows a step's definition
    node(page, "route").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.dataset.node")
    assert focused and focused != "route"
    node(page, "route").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".step-detail")).to_contain_text('"default": "oops"')

    # narrow: nothing but the graph itself scrolls sideways
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{deployed.outputs['consoleUrl']}#/tasks")
    expect(page.locator("table.tasks")).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_screenshot_of_a_task_page_with_a_parallel_step(deployed: Deployed, page: Page, stub: StubServer):
    notify = f"/{_id('notify')}"
    job = f"/{_id('job')}"
    stub.reply(job, (200, {"state": "busy"}))
    document = flow(PARALLEL, id=_id("console-parallel"), notify=stub.url + notify, job=stub.url + job)
    flow_id = register(deployed, document)
    task_id = start(deployed, flow_id, {"text": "Quarterly report"})
    stub.wait_for(notify)
    stub.wait_for(job, count=2)
    history_queries: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: (
            history_queries.append(request.post_data_json)
            if request.method == "POST" and "getWorkflowHistory" in (request.post_data or "")
            else None
        ),
    )
    open_task(page, deployed, task_id)
    expect(node(page, "prepare")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    expect(node(page, "fanout")).to_have_attribute("data-state", "running")
    expect(node(page, "fanout/summary/summarise")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    expect(node(page, "fanout/review/approve")).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    expect(node(page, "fanout/export/job")).to_have_attribute("data-state", "polling", timeout=WAIT_MS)
    expect(node(page, "fanout/export/job").locator(".node-state")).to_contain_text("attempt")
    expect(node(page, "fanout").locator(".node-state")).to_have_text("running · 1/3 branches done")
    expect(node(page, "route")).to_have_attribute("data-state", "not-reached")
    # opened after the fork, the page read the three branch records at the ids their fork gave them
    # (the task's first seq at the parallel step), and asked for no other record
    history = deployed.rest("GET", f"/tasks/{task_id}/history").json()["items"]
    fork = min(s["seq"] for s in history if s["currentStep"] == "fanout")
    records = {f"{task_id}~{fork}~{branch}" for branch in ("summary", "review", "export")}
    expect(page.locator("#resume-record")).to_have_value(f"{task_id}~{fork}~review")
    asked = {value for q in history_queries for name, value in q["variables"].items() if name.startswith("r")}
    assert asked == records

    shot = artifact_dir() / SCREENSHOT
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # a narrow window: the panels stack, only the graph's own box scrolls sideways
    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    expect(node(page, "fanout/review/approve")).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # the graph's box scrolled to the step that waits for someone
    box = page.locator(".graph-scroll").bounding_box()
    waiting = node(page, "fanout/review/approve").bounding_box()
    assert box and waiting and box["x"] <= waiting["x"] and waiting["x"] + waiting["width"] <= box["x"] + box["width"]
    page.screenshot(path=str(artifact_dir() / "console-task-narrow.png"), full_page=True)
    assert deployed.rest("POST", f"/tasks/{task_id}/cancel", json={}).status_code == 202


FOR_EACH = """
id: $id
startAt: prepare
steps:
  prepare: {type: transform, value: {n: 1}, resultPath: doc, next: fan}
  fan:
    type: parallel
    forEach:
      items: "{{ input.items }}"
      branch:
        startAt: approve
        steps:
          approve: {type: wait_for_event, timeoutSeconds: 600, notify: {url: "$notify"}, next: ok}
          ok: {type: succeed}
    next: done
  done: {type: succeed}
"""


def test_a_task_page_opened_after_a_for_each_fork_finds_every_item(deployed: Deployed, page: Page, stub: StubServer):
    notify = f"/{_id('notify')}"
    flow_id = register(deployed, flow(FOR_EACH, id=_id("console-each"), notify=stub.url + notify))
    task_id = start(deployed, flow_id, {"items": ["a", "b", "c"]})
    stub.wait_for(notify, count=3)
    history_queries: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: (
            history_queries.append(request.post_data_json)
            if request.method == "POST" and "getWorkflowHistory" in (request.post_data or "")
            else None
        ),
    )
    open_task(page, deployed, task_id)
    expect(node(page, "fan/each/approve").locator(".node-state")).to_have_text("3 waiting", timeout=WAIT_MS)
    expect(node(page, "fan").locator(".node-state")).to_have_text("running · 0/3 branches done")
    # the item records' ids: the task's first seq at the step, and the items' indexes
    history = deployed.rest("GET", f"/tasks/{task_id}/history").json()["items"]
    fork = min(s["seq"] for s in history if s["currentStep"] == "fan")
    expect(page.locator("#resume-record")).to_have_value(f"{task_id}~{fork}~0")
    asked = {value for q in history_queries for name, value in q["variables"].items() if name.startswith("r")}
    assert {f"{task_id}~{fork}~{i}" for i in range(3)} <= asked
    assert all(record.startswith(f"{task_id}~{fork}~") for record in asked), asked
    assert deployed.rest("POST", f"/tasks/{task_id}/cancel", json={}).status_code == 202


def test_the_stack_serves_the_console_its_settings_and_only_the_vendored_files(deployed: Deployed):
    url = deployed.outputs["consoleUrl"]
    assert url == deployed.stack.base_url + "/console/"
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and '<script type="module" src="js/app.js">' in page.text
    config = requests.get(url + "config.json", timeout=10)
    assert config.headers["cache-control"] == "no-store"
    assert config.json() == {key: deployed.outputs[key] for key in CONFIG_KEYS if key in deployed.outputs}
    vendored = requests.get(url + "vendor/dagre.esm.js", timeout=10)
    assert vendored.status_code == 200 and vendored.headers["content-type"].startswith("text/javascript")
    assert vendored.content == (REPO_ROOT / "node_modules" / VENDORED["dagre.esm.js"]).read_bytes()
    for path in ("vendor/package.json", "vendor/..%2F..%2Fpackage.json", "../Makefile", "js/missing.js"):
        assert requests.get(url + path, timeout=10).status_code in (403, 404), path
    # AppSync answers browsers of any origin, as the console opened for a stage needs
    preflight = requests.options(
        deployed.outputs["graphqlUrl"],
        headers={
            "origin": "http://127.0.0.1:1",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-api-key",
        },
        timeout=10,
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
    assert requests.get(deployed.stack.base_url + "/console", timeout=10, allow_redirects=False).status_code in (
        302,
        307,
    )


def test_the_console_alone_asks_for_a_stage(tmp_path: Path):
    """`python -m local.console` (for a deployed stage) serves the app but no settings of its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "local.console", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/console/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "python -m local.console did not serve"
                time.sleep(0.1)
        assert page.status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/console/config.json", timeout=5).status_code == 404
        assert requests.get(f"http://127.0.0.1:{port}/console/vendor/dagre.esm.js", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_console_for_a_stage_takes_its_outputs_in_settings_and_keeps_them_in_the_session(
    deployed: Deployed, browser: Browser, stub: StubServer
):
    """The console served alone (as for a deployed stage) knows no API until the user pastes the
    stage's outputs; then it works against that stage's GraphQL API, from another origin."""
    flow_id = register(deployed, wait_flow(_id("console-stage"), stub.reply(f"/{_id('n')}", (204, ""))))
    task_id = start(deployed, flow_id)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "local.console", "--port", str(port)], cwd=REPO_ROOT)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/console/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "python -m local.console did not serve"
                time.sleep(0.1)
        page.goto(f"http://127.0.0.1:{port}/console/#/tasks")
        expect(page.locator("#settings-outputs")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#connection")).to_have_text("not connected")
        outputs = {key: deployed.outputs[key] for key in ("graphqlUrl", "realtimeUrl", "apiKey", "stage")}
        page.fill("#settings-outputs", json.dumps(outputs))
        page.get_by_role("button", name="Connect").click()
        row = page.locator(f'tr[data-task="{task_id}"]')
        expect(row.locator("td.status")).to_have_text("waiting", timeout=WAIT_MS)
        subscribed(page)
        assert deployed.rest("POST", f"/tasks/{task_id}/cancel", json={}).status_code == 202
        expect(row.locator("td.status")).to_have_text("aborted", timeout=WAIT_MS)

        stored = page.evaluate("[sessionStorage.getItem('aiwf.console.config'), localStorage.length]")
        assert json.loads(stored[0])["apiKey"] == deployed.outputs["apiKey"] and stored[1] == 0
        page.reload()  # the same tab keeps them
        expect(page.locator(f'tr[data-task="{task_id}"]')).to_be_visible(timeout=WAIT_MS)
        other = context.new_page()  # a new tab (a new session) asks again
        other.goto(f"http://127.0.0.1:{port}/console/#/tasks")
        expect(other.locator("#settings-outputs")).to_be_visible(timeout=WAIT_MS)
    finally:
        context.close()
        server.terminate()
        server.wait(timeout=10)


def test_the_task_list_pages_newest_first_and_filters_by_status(deployed: Deployed, page: Page, stub: StubServer):
    flow_id = register(deployed, wait_flow(_id("console-pages"), stub.reply(f"/{_id('n')}", (204, ""))))
    tasks = [start(deployed, flow_id) for _ in range(3)]  # oldest first
    for task_id in tasks:
        until(deployed, task_id, "WAITING")
    assert deployed.rest("POST", f"/tasks/{tasks[0]}/cancel", json={}).status_code == 202
    until(deployed, tasks[0], "ABORTED")

    page.goto(f"{deployed.outputs['consoleUrl']}#/tasks?flow={flow_id}&limit=2")
    shown = page.locator("table.tasks tbody tr[data-task]")
    expect(shown).to_have_count(2, timeout=WAIT_MS)
    assert shown.evaluate_all("rows => rows.map(r => r.dataset.task)") == [tasks[2], tasks[1]]
    page.get_by_role("button", name="Older →").click()
    expect(shown).to_have_count(1, timeout=WAIT_MS)
    expect(shown).to_have_attribute("data-task", tasks[0])
    expect(page.get_by_role("button", name="Older →")).to_be_disabled()
    page.get_by_role("button", name="← Newer").click()
    expect(shown).to_have_count(2, timeout=WAIT_MS)

    page.select_option("#filter-status", "ABORTED")
    expect(page).to_have_url(f"{deployed.outputs['consoleUrl']}#/tasks?status=ABORTED&flow={flow_id}&limit=2")
    expect(shown).to_have_count(1, timeout=WAIT_MS)
    expect(shown).to_have_attribute("data-task", tasks[0])
    expect(shown.locator("td.status")).to_have_text("aborted")
    for task_id in tasks[1:]:
        assert deployed.rest("POST", f"/tasks/{task_id}/cancel", json={}).status_code == 202
