"""Who gets what, operation by operation, on both APIs of a running local stack (issue 21 item 6).

The two tables below are the whole contract this file checks: every operation of the catalogue
(`schema/operations.json`) on REST and every Query, Mutation and Subscription field of
`schema/schema.graphql`, against every kind of caller. An operation or field missing from a table
fails the test, so a new one cannot ship without its row.

The target of each cell is a task of tenant A waiting at a `wait_for_event` whose notification (to
the stub server) handed out its resume token: a fresh one per cell for the operations that change a
task (resume, cancel, redrive, callback; and the subscription, whose owner resumes it while the
caller watches), and a refused call must leave it as it was. Every caller sends the same request
(with that real token where the operation takes one), only the credential differs:

- `operator`: SigV4 with the stack's `awsCredentials` (IAM);
- `user`: an ID token of a user of tenant A;
- `other`: an ID token of a user of tenant B (never sees A's task: 404 / null / unlisted);
- `key`: the API key (tenant `default`), on a task of tenant `default`: its own;
- `key@A`: the API key on tenant A's task (the key acts for `default` only);
- `none`: no credential at all;
- `token`: the resume token alone (as `Authorization` where the operation takes no token, in the
  body of the callbacks with nothing else).

Lists are `listed` / `unlisted`: whether the target task is among the answer's items. GraphQL cells
are `data`, `null`, `empty` (a list with nothing in it) or the first error's errorType (AppSync's
`UnauthorizedException` refuses the whole request, `Unauthorized` one field). `startTask`
names the column's tenant (`tenantId:` A, or `default` for `key`) on GraphQL; REST takes no tenant.

`PYTHONPATH=.:lambdas:sdk .venv/bin/python -m tests.e2e.test_e2e_authority` (or this file's tests
with `-s`) prints the tables as markdown.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import yaml
from gql import Client, GraphQLRequest, gql
from gql.transport.appsync_auth import (
    AppSyncApiKeyAuthentication,
    AppSyncAuthentication,
    AppSyncJWTAuthentication,
)
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport

from infra.operations import operations
from tests.cognito_users import sign_in
from tests.e2e.conftest import FINAL, REPO_ROOT, Deployed, run
from tests.integration.stub_server import StubServer, start_stub
from tests.sigv4 import SigV4

CALLERS = ("operator", "user", "other", "key", "key@A", "none", "token")

# The outcomes, spelled out in the printed tables.
FORBIDDEN = "403 FORBIDDEN"  # REST: the gateway's or the handler's refusal, in the error envelope
NOT_FOUND = "404 TASK_NOT_FOUND"  # REST: another tenant's task is not there
REFUSED = "UnauthorizedException"  # GraphQL: AppSync refuses the whole request (no valid credential)
DENIED = "Unauthorized"  # GraphQL: the field's directives do not name the caller's auth mode
MISSING = "TASK_NOT_FOUND"  # GraphQL: another tenant's task is not there

# fmt: off
REST: dict[str, tuple[str, ...]] = {
    #                     operator   user          other           key           key@A           none       token
    "listFlows":         (FORBIDDEN, "200",        "200",          "200",        "200",          FORBIDDEN, FORBIDDEN),
    "getFlow":           (FORBIDDEN, "200",        "200",          "200",        "200",          FORBIDDEN, FORBIDDEN),
    "putFlow":           ("201",     FORBIDDEN,    FORBIDDEN,      FORBIDDEN,    FORBIDDEN,      FORBIDDEN, FORBIDDEN),
    "retireFlow":        ("200",     FORBIDDEN,    FORBIDDEN,      FORBIDDEN,    FORBIDDEN,      FORBIDDEN, FORBIDDEN),
    "startTask":         (FORBIDDEN, "201",        "201",          "201",        "201",          FORBIDDEN, FORBIDDEN),
    "listTasks":         (FORBIDDEN, "200 listed", "200 unlisted", "200 listed", "200 unlisted", FORBIDDEN, FORBIDDEN),
    "getTask":           (FORBIDDEN, "200",        NOT_FOUND,      "200",        NOT_FOUND,      FORBIDDEN, FORBIDDEN),
    "getTaskHistory":    (FORBIDDEN, "200",        NOT_FOUND,      "200",        NOT_FOUND,      FORBIDDEN, FORBIDDEN),
    "resumeTask":        (FORBIDDEN, "202",        NOT_FOUND,      "202",        NOT_FOUND,      FORBIDDEN, FORBIDDEN),
    "heartbeatTask":     (FORBIDDEN, "200",        NOT_FOUND,      "200",        NOT_FOUND,      FORBIDDEN, FORBIDDEN),
    "cancelTask":        (FORBIDDEN, "202",        NOT_FOUND,      "202",        NOT_FOUND,      FORBIDDEN, FORBIDDEN),
    "redriveTask":       (FORBIDDEN, "202",        NOT_FOUND,      "202",        NOT_FOUND,      FORBIDDEN, FORBIDDEN),
    # Open methods: the resume token in the body is the credential, whatever else the request holds.
    "callbackTask":      ("202",     "202",        "202",          "202",        "202",          "202",     "202"),
    "callbackHeartbeat": ("200",     "200",        "200",          "200",        "200",          "200",     "200"),
}

GRAPHQL: dict[str, tuple[str, ...]] = {
    #                       operator user      other       key       key@A       none     token
    "listFlows":           ("data",  "data",   "data",     "data",   "data",     REFUSED, REFUSED),
    "getFlow":             ("data",  "data",   "data",     "data",   "data",     REFUSED, REFUSED),
    "putFlow":             ("data",  DENIED,   DENIED,     DENIED,   DENIED,     REFUSED, REFUSED),
    "retireFlow":          ("data",  DENIED,   DENIED,     DENIED,   DENIED,     REFUSED, REFUSED),
    "startTask":           ("data",  "data",   "FORBIDDEN", "data",  "FORBIDDEN", REFUSED, REFUSED),
    "listWorkflowStates":  ("listed", "listed", "unlisted", "listed", "unlisted", REFUSED, REFUSED),
    "getWorkflowState":    ("data",  "data",   "null",     "data",   "null",     REFUSED, REFUSED),
    "getWorkflowHistory":  ("data",  "data",   "empty",    "data",   "empty",    REFUSED, REFUSED),
    "resumeTask":          ("data",  "data",   MISSING,    "data",   MISSING,    REFUSED, REFUSED),
    "cancelTask":          ("data",  "data",   MISSING,    "data",   MISSING,    REFUSED, REFUSED),
    "redriveTask":         ("data",  "data",   MISSING,    "data",   MISSING,    REFUSED, REFUSED),
    # The operator here is the embedded AWS's administrator (appsync:GraphQL on *): it can publish. An
    # operator with docs/security.md's policy cannot (tests/integration/test_least_privilege.py).
    "updateWorkflowState": ("data",  DENIED,   DENIED,     DENIED,   DENIED,     REFUSED, REFUSED),
    # Subscribed (over the real-time WebSocket) to the target's taskId while its owner resumes it.
    "workflowStateUpdated": ("delivered", "delivered", "undelivered", "delivered", "undelivered", REFUSED, REFUSED),
}
# fmt: on

# The operations that change their task: each of their cells gets a task of its own.
FRESH = {
    "rest": {"resumeTask", "cancelTask", "redriveTask", "callbackTask"},
    "graphql": {"resumeTask", "cancelTask", "redriveTask", "workflowStateUpdated"},
}
REDRIVE = "redriveTask"  # its targets are cancelled (ABORTED) first
CALLBACKS = {"callbackTask", "callbackHeartbeat"}
HELLO = REPO_ROOT / "flows" / "hello.yaml"
WATCH = gql("subscription($taskId: ID) { workflowStateUpdated(taskId: $taskId) { taskId tenantId status seq } }")


def catalogue_operations() -> list[str]:
    """Every REST operation of the catalogue."""
    return [name for name, op in operations().items() if "rest" in op]


def schema_fields() -> list[str]:
    """Every Query, Mutation and Subscription field of the GraphQL schema."""
    text = (REPO_ROOT / "schema" / "schema.graphql").read_text()
    text = re.sub(r'"""[\s\S]*?"""', "", text)
    text = re.sub(r'^\s*"[^"\n]*"\s*$', "", text, flags=re.MULTILINE)
    fields: list[str] = []
    for block in re.findall(r"^type (?:Query|Mutation|Subscription) \{([\s\S]*?)^\}", text, flags=re.MULTILINE):
        fields += re.findall(r"^  (\w+)[(:]", block, flags=re.MULTILINE)
    return fields


def slug(caller: str) -> str:
    """A caller's name as a part of a flow id (lower case letters, digits and dashes)."""
    return caller.replace("@", "-").lower()


def tenant_of(caller: str) -> str:
    """Whose task a column targets: the key its own tenant's, everybody else tenant A's."""
    return "default" if caller == "key" else "A"


@dataclass
class Target:
    task_id: str
    token: str = ""
    wait_id: str = ""


@dataclass
class World:
    """What the cells share: tenants, users' ID tokens, flows, and the tasks each cell acts on."""

    deployed: Deployed
    tenants: dict[str, str]
    id_tokens: dict[str, str]
    wait_flow: str
    hello_flow: str
    shared: dict[str, Target] = field(default_factory=dict)
    fresh: dict[tuple[str, str, str], Target] = field(default_factory=dict)
    retire_flows: dict[tuple[str, str], str] = field(default_factory=dict)
    prefix: str = ""

    @property
    def outputs(self) -> dict[str, Any]:
        return self.deployed.outputs

    def owner_headers(self, tenant: str) -> dict[str, str]:
        """How the owner of a tenant's tasks (A's user, or the key for `default`) calls REST."""
        if tenant == "A":
            return {"Authorization": self.id_tokens["user"]}
        return {"x-api-key": self.outputs["apiKey"]}

    def status(self, target: Target, tenant: str) -> str:
        """The target's status, as its owner reads it."""
        url = f"{self.outputs['taskApiUrl']}/tasks/{target.task_id}"
        return requests.get(url, headers=self.owner_headers(tenant), timeout=30).json()["status"]

    def unchanged(self, api: str, operation: str, caller: str) -> None:
        """A refused call to an operation that changes its task left that task as it was."""
        if operation in FRESH[api] and operation != "workflowStateUpdated":
            before = "ABORTED" if operation == REDRIVE else "WAITING"
            after = self.status(self.target(api, operation, caller), tenant_of(caller))
            assert after == before, f"{api} {operation} as {caller} was refused but the task went {before} -> {after}"

    def target(self, api: str, operation: str, caller: str) -> Target:
        return self.fresh.get((api, operation, caller)) or self.shared[tenant_of(caller)]

    def credential(self, caller: str, target: Target, service: str, in_body: bool) -> dict[str, Any]:
        """The request arguments that carry the caller's credential, and nothing else."""
        if caller == "operator":
            return {"auth": SigV4(self.outputs["awsCredentials"], service)}
        if caller in ("user", "other"):
            return {"headers": {"Authorization": self.id_tokens[caller]}}
        if caller in ("key", "key@A"):
            return {"headers": {"x-api-key": self.outputs["apiKey"]}}
        if caller == "token" and not in_body:
            return {"headers": {"Authorization": target.token}}
        return {}


def _waiting_flow(flow_id: str, notify_url: str) -> dict[str, Any]:
    return {
        "id": flow_id,
        "startAt": "approve",
        "steps": {
            "approve": {
                "type": "wait_for_event",
                "timeoutSeconds": 900,
                "heartbeatSeconds": 600,
                "notify": {"url": notify_url},
                "next": "done",
            },
            "done": {"type": "succeed"},
        },
    }


def _put_flow(deployed: Deployed, document: dict[str, Any]) -> None:
    response = deployed.rest("PUT", f"/flows/{document['id']}", json=document)
    assert response.status_code in (200, 201), response.text


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    server = start_stub()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def world(deployed: Deployed, stub: StubServer) -> Iterator[World]:
    """Users of tenants A and B, the flows, and every cell's target task waiting with its token."""
    prefix = f"mx-{uuid.uuid4().hex[:6]}"
    tenants = {"A": f"{prefix}-a", "B": f"{prefix}-b", "default": "default"}
    outputs = deployed.outputs
    id_tokens = {
        "user": sign_in(outputs, f"{prefix}-ann", tenants["A"]),
        "other": sign_in(outputs, f"{prefix}-bob", tenants["B"]),
    }
    world = World(deployed, tenants, id_tokens, f"{prefix}-wait", f"{prefix}-hello", prefix=prefix)
    notify = f"/notify/{prefix}"
    _put_flow(deployed, _waiting_flow(world.wait_flow, stub.url + notify))
    _put_flow(deployed, {**yaml.safe_load(HELLO.read_text()), "id": world.hello_flow})
    for api in ("rest", "graphql"):
        for caller in CALLERS:
            world.retire_flows[(api, caller)] = f"{prefix}-retire-{api}-{slug(caller)}"
            _put_flow(deployed, {**yaml.safe_load(HELLO.read_text()), "id": world.retire_flows[(api, caller)]})

    def start(tenant: str) -> str:
        response = requests.post(
            outputs["taskApiUrl"] + "/tasks",
            json={"flowId": world.wait_flow, "input": {}},
            headers=world.owner_headers(tenant),
            timeout=30,
        )
        assert response.status_code == 201, response.text
        assert response.json()["tenantId"] == tenants[tenant]
        return response.json()["taskId"]

    cells = [(api, op, caller) for api, ops in FRESH.items() for op in sorted(ops) for caller in CALLERS]
    wanted = ["A", "default"] + [tenant_of(caller) for _, _, caller in cells]
    with ThreadPoolExecutor(4) as pool:
        task_ids = list(pool.map(start, wanted))
    notified = {r.body["taskId"]: r.body for r in stub.wait_for(notify, len(task_ids), timeout=120)}
    targets = [Target(task_id, notified[task_id]["resumeToken"], notified[task_id]["waitId"]) for task_id in task_ids]
    world.shared = {"A": targets[0], "default": targets[1]}
    world.fresh = dict(zip(cells, targets[2:], strict=True))

    def until(target: Target, tenant: str, status: str) -> None:
        deadline = time.monotonic() + 60
        while (current := world.status(target, tenant)) != status:
            assert time.monotonic() < deadline, f"{target.task_id} is {current}, not {status}"
            time.sleep(0.1)

    for tenant, target in world.shared.items():
        until(target, tenant, "WAITING")
    for (_, op, caller), target in world.fresh.items():
        until(target, tenant_of(caller), "WAITING")
        if op == REDRIVE:
            url = f"{outputs['taskApiUrl']}/tasks/{target.task_id}/cancel"
            cancelled = requests.post(url, json={}, headers=world.owner_headers(tenant_of(caller)), timeout=30)
            assert cancelled.status_code in (200, 202), cancelled.text
            until(target, tenant_of(caller), "ABORTED")
    yield world
    for (_, _, caller), target in world.fresh.items():  # leave no task waiting on the session's stack
        url = f"{outputs['taskApiUrl']}/tasks/{target.task_id}/cancel"
        requests.post(url, json={}, headers=world.owner_headers(tenant_of(caller)), timeout=30)
    for tenant, target in world.shared.items():
        url = f"{outputs['taskApiUrl']}/tasks/{target.task_id}/cancel"
        requests.post(url, json={}, headers=world.owner_headers(tenant), timeout=30)


# -- REST ------------------------------------------------------------------------------------------


def rest_call(world: World, operation: str, caller: str) -> requests.Response:
    rest = operations()[operation]["rest"]
    target = world.target("rest", operation, caller)
    flow_id = {
        "putFlow": f"{world.prefix}-put-{slug(caller)}",
        "retireFlow": world.retire_flows[("rest", caller)],
    }.get(operation, world.hello_flow)
    path = rest["path"].format(flowId=flow_id, taskId=target.task_id, waitId=target.wait_id)
    bodies: dict[str, Any] = {
        "putFlow": {**yaml.safe_load(HELLO.read_text()), "id": flow_id},
        "startTask": {"flowId": world.hello_flow, "input": {"name": "matrix"}},
        "resumeTask": {"resumeToken": target.token, "status": "SUCCEEDED", "output": {"by": caller}},
        "callbackTask": {"resumeToken": target.token, "status": "SUCCEEDED", "output": {"by": caller}},
        "heartbeatTask": {"resumeToken": target.token},
        "callbackHeartbeat": {"resumeToken": target.token},
        "cancelTask": {"reason": f"matrix {caller}"},
    }
    kwargs: dict[str, Any] = world.credential(caller, target, "execute-api", in_body=operation in CALLBACKS)
    if operation in bodies:
        kwargs["json"] = bodies[operation]
    if operation == "listTasks":
        kwargs["params"] = {"flowId": world.wait_flow, "limit": 100}
    url = world.outputs["taskApiUrl"] + path
    return requests.request(rest["method"].upper(), url, timeout=30, **kwargs)


def rest_outcome(world: World, operation: str, caller: str, response: requests.Response) -> str:
    if response.status_code < 300:
        if operation == "listTasks":
            listed = world.target("rest", operation, caller).task_id in {t["taskId"] for t in response.json()["items"]}
            return f"{response.status_code} {'listed' if listed else 'unlisted'}"
        return str(response.status_code)
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = f"? {response.text[:80]}"
    return f"{response.status_code} {code}"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", catalogue_operations())
def test_rest(world: World, operation: str, caller: str) -> None:
    assert operation in REST, f"{operation} has no row in the REST table"
    expected = REST[operation][CALLERS.index(caller)]
    response = rest_call(world, operation, caller)
    actual = rest_outcome(world, operation, caller, response)
    assert actual == expected, f"REST {operation} as {caller}: {actual} (expected {expected}): {response.text[:300]}"
    assert world.target("rest", operation, caller).token not in response.text, "a resume token in an answer"
    if not expected.startswith("2"):
        world.unchanged("rest", operation, caller)
    elif operation == "startTask":  # REST takes no tenant: the credential's
        own = {"user": "A", "other": "B"}.get(caller, "default")
        assert response.json()["tenantId"] == world.tenants[own], response.text


# -- GraphQL ---------------------------------------------------------------------------------------


def graphql_request(world: World, name: str, caller: str) -> tuple[str, dict[str, Any]]:
    """The query or mutation of field `name` for `caller`'s target, and its variables."""
    target = world.target("graphql", name, caller)
    tenant = world.tenants[tenant_of(caller)]
    hello = yaml.safe_load(HELLO.read_text())
    requests_by_field: dict[str, tuple[str, dict[str, Any]]] = {
        "listFlows": ("query { listFlows(limit: 100) { items { flowId } } }", {}),
        "getFlow": ("query($f: String!) { getFlow(flowId: $f) { flowId } }", {"f": world.hello_flow}),
        "putFlow": (
            "mutation($d: AWSJSON!) { putFlow(document: $d) { flowId version } }",
            {"d": json.dumps({**hello, "id": f"{world.prefix}-gput-{slug(caller)}"})},
        ),
        "retireFlow": (
            "mutation($f: String!) { retireFlow(flowId: $f) { flowId retired } }",
            {"f": world.retire_flows[("graphql", caller)]},
        ),
        "startTask": (
            "mutation($f: String!, $i: AWSJSON, $t: String) {"
            " startTask(flowId: $f, input: $i, tenantId: $t) { taskId tenantId } }",
            {"f": world.hello_flow, "i": json.dumps({"name": "matrix"}), "t": tenant},
        ),
        "listWorkflowStates": (
            "query($f: String) { listWorkflowStates(flowId: $f, limit: 100) { items { taskId } } }",
            {"f": world.wait_flow},
        ),
        "getWorkflowState": (
            "query($t: ID!) { getWorkflowState(taskId: $t) { taskId tenantId } }",
            {"t": target.task_id},
        ),
        "getWorkflowHistory": ("query($t: ID!) { getWorkflowHistory(taskId: $t) { seq } }", {"t": target.task_id}),
        "resumeTask": (
            "mutation($t: ID!, $r: String!) {"
            ' resumeTask(taskId: $t, resumeToken: $r, status: SUCCEEDED, output: "{}") { taskId status } }',
            {"t": target.task_id, "r": target.token},
        ),
        "cancelTask": (
            'mutation($t: ID!) { cancelTask(taskId: $t, reason: "matrix") { taskId status } }',
            {"t": target.task_id},
        ),
        "redriveTask": ("mutation($t: ID!) { redriveTask(taskId: $t) { taskId status } }", {"t": target.task_id}),
        "updateWorkflowState": (
            "mutation($i: WorkflowStateInput!) { updateWorkflowState(input: $i) { taskId } }",
            {"i": {"taskId": f"{world.prefix}-nobody", "flowId": world.hello_flow, "status": "RUNNING", "seq": 1}},
        ),
    }
    return requests_by_field[name]


def graphql_outcome(world: World, name: str, caller: str, answer: dict[str, Any]) -> str:
    if answer.get("errors"):
        return answer["errors"][0].get("errorType") or f"? {answer['errors'][0].get('message')}"
    value = (answer.get("data") or {}).get(name)
    if value is None:
        return "null"
    if name == "listWorkflowStates":
        listed = world.target("graphql", name, caller).task_id in {t["taskId"] for t in value["items"]}
        return "listed" if listed else "unlisted"
    if isinstance(value, list) and not value:
        return "empty"
    return "data"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", schema_fields())
def test_graphql(world: World, name: str, caller: str) -> None:
    assert name in GRAPHQL, f"{name} has no row in the GraphQL table"
    expected = GRAPHQL[name][CALLERS.index(caller)]
    if name == "workflowStateUpdated":
        actual = run(subscription_outcome(world, caller))
        assert actual == expected, f"GraphQL {name} as {caller}: {actual} (expected {expected})"
        return
    query, variables = graphql_request(world, name, caller)
    target = world.target("graphql", name, caller)
    kwargs = world.credential(caller, target, "appsync", in_body=False)
    response = requests.post(
        world.outputs["graphqlUrl"], json={"query": query, "variables": variables}, timeout=30, **kwargs
    )
    actual = graphql_outcome(world, name, caller, response.json())
    assert actual == expected, f"GraphQL {name} as {caller}: {actual} (expected {expected}): {response.text[:300]}"
    assert target.token not in response.text, "a resume token in an answer"
    if expected != "data":
        world.unchanged("graphql", name, caller)
    elif name == "startTask":
        assert response.json()["data"]["startTask"]["tenantId"] == world.tenants[tenant_of(caller)], response.text


class HostOnly(AppSyncAuthentication):
    """A real-time handshake with no credential at all (gql's transport insists on an auth)."""

    def __init__(self, host: str, value: str | None = None) -> None:
        self._host, self.value = host, value

    def get_headers(self, data: str | None = None, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"host": self._host}


def subscription_transport(world: World, caller: str, target: Target) -> AppSyncWebsocketsTransport:
    host, url = world.deployed.host, world.outputs["realtimeUrl"]
    auth: AppSyncAuthentication
    if caller == "operator":
        return world.deployed.iam_ws()
    if caller in ("user", "other"):
        auth = AppSyncJWTAuthentication(host=host, jwt=world.id_tokens[caller])
    elif caller in ("key", "key@A"):
        auth = AppSyncApiKeyAuthentication(host=host, api_key=world.outputs["apiKey"])
    elif caller == "token":
        auth = AppSyncJWTAuthentication(host=host, jwt=target.token)
    else:
        auth = HostOnly(host)
    return AppSyncWebsocketsTransport(url=url, auth=auth)


async def subscription_outcome(world: World, caller: str) -> str:
    """Subscribe as `caller` to its target's changes, have the owner resume the target, and say
    whether any change was delivered (or how the subscription was refused)."""
    target = world.target("graphql", "workflowStateUpdated", caller)
    owner = world.owner_headers(tenant_of(caller))
    task_url = f"{world.outputs['taskApiUrl']}/tasks/{target.task_id}"
    received: list[dict[str, Any]] = []

    async def listen() -> None:
        async with Client(transport=subscription_transport(world, caller, target)) as session:
            request = GraphQLRequest(WATCH, variable_values={"taskId": target.task_id})
            async for result in session.subscribe(request):
                received.append(result["workflowStateUpdated"])

    before = world.deployed.subscriptions()
    listener = asyncio.create_task(listen())
    deadline = time.monotonic() + 10
    while world.deployed.subscriptions() <= before and not listener.done():
        assert time.monotonic() < deadline, "neither subscribed nor refused"
        await asyncio.sleep(0.01)
    if listener.done():
        error = listener.exception()
        errors = getattr(error, "errors", None) or []
        text = str(error)
        return next((e.get("errorType") for e in errors if isinstance(e, dict)), None) or (
            REFUSED if "Unauthorized" in text else f"? {text[:120]}"
        )
    body = {"resumeToken": target.token, "status": "SUCCEEDED", "output": {}}
    resumed = await asyncio.to_thread(requests.put, task_url, json=body, headers=owner, timeout=30)
    assert resumed.status_code == 202, resumed.text
    deadline = time.monotonic() + 30
    while True:
        state = (await asyncio.to_thread(requests.get, task_url, headers=owner, timeout=30)).json()
        if state["status"] in FINAL or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # a delivery of the final state would arrive now
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    return "delivered" if any(s["taskId"] == target.task_id for s in received) else "undelivered"


# -- The tables themselves -------------------------------------------------------------------------


def test_every_operation_and_field_has_a_row_of_every_caller() -> None:
    assert sorted(REST) == sorted(catalogue_operations())
    assert sorted(GRAPHQL) == sorted(schema_fields())
    assert all(len(row) == len(CALLERS) for row in (*REST.values(), *GRAPHQL.values()))
    print("\n" + matrix_markdown())


def matrix_markdown() -> str:
    """The two tables as markdown, to paste into a note."""
    lines = []
    for title, table in (("REST operation", REST), ("GraphQL field", GRAPHQL)):
        lines += [f"| {title} | " + " | ".join(CALLERS) + " |", "|---" * (len(CALLERS) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(row) + " |" for name, row in table.items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(matrix_markdown())
