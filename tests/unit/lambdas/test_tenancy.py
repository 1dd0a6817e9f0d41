"""Tenant isolation on moto in process: each caller sees exactly its tenant's tasks, on REST and
GraphQL alike (get, list with filters and pages, history, resume, cancel, redrive, heartbeat, and
idempotent names per tenant); another tenant's task is one that does not exist."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from aiwf import callers, standard_executions
from aiwf.flow_store import FlowStore
from aiwf.handlers import graphql, task_api
from aiwf.repository import Task, TaskRepository
from aiwf.settings import get_settings
from aiwf.tasks import task_id_for
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("aws_tables", "open_catalogue")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orchestrator"
NOW = "2026-01-01T00:00:00.000000Z"


class Context:
    function_name = "aiwf"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:aiwf"
    aws_request_id = "req"


@pytest.fixture
def open_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users, the key and operators may call every task operation (the catalogue's callers after
    the edge work; until then REST names only the key): these tests are about tenants."""
    monkeypatch.setattr(callers, "allowed_kinds", lambda operation_id, api: frozenset({"operator", "user", "key"}))


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    get_settings.cache_clear()
    started: list[str] = []

    class Fake:
        def start_execution(self, **kwargs: Any) -> dict[str, Any]:
            started.append(kwargs["name"])
            return {"executionArn": MACHINE.replace(":stateMachine:", ":execution:") + ":" + kwargs["name"]}

    monkeypatch.setattr(standard_executions, "client", lambda service: Fake())
    return started


# -- callers as the gateways hand them --------------------------------------------------------------
def rest_user(tenant: str) -> dict[str, Any]:
    return {"caller": "user", "tenant": tenant, "username": f"u-{tenant}", "groups": "[]", "principalId": "sub"}


REST_KEY = {"caller": "key", "tenant": "default", "username": "", "groups": "[]", "principalId": "apikey:x"}
GQL_OPERATOR = {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:user/ci", "username": "AKIA"}


def gql_user(tenant: str) -> dict[str, Any]:
    return {"sub": "s", "username": f"u-{tenant}", "claims": {"custom:tenant": tenant}, "groups": None}


def rest(method: str, path: str, authorizer: dict[str, Any], body: Any = None, **query: Any) -> tuple[int, Any]:
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json"},
        "queryStringParameters": {k: str(v) for k, v in query.items()} or None,
        "pathParameters": None,
        "requestContext": {"requestId": "r", "stage": "dev", "identity": {}, "authorizer": authorizer},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }
    answer = task_api.handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])


def gql(type_name: str, field: str, identity: dict[str, Any] | None, **arguments: Any) -> Any:
    event = {"arguments": arguments, "identity": identity, "info": {"parentTypeName": type_name, "fieldName": field}}
    if (type_name, field) in graphql.FIELDS:
        return graphql.handler(event, Context())
    return graphql.control_handler(event, Context())


def task(tenant: str | None, *, status: str = "SUCCEEDED", flow_id: str = "f", started: str = NOW) -> str:
    """A stored task of `tenant` (None: a record from before tenants, with no tenant attribute)."""
    task_id = str(uuid.uuid4())
    record = Task(task_id, flow_id, 1, status, 1, started, started, tenant_id=tenant or "default")
    repo = TaskRepository()
    assert repo.create(record)
    if tenant is None:  # as an old record: no tenant attribute at all
        repo._ddb.update_item(TableName=repo._tasks, Key={"taskId": {"S": task_id}}, UpdateExpression="REMOVE tenantId")
    return task_id


# -- reads ---------------------------------------------------------------------------------------------
def test_get_shows_a_task_to_its_tenant_and_operators_only() -> None:
    mine, theirs, old = task("acme"), task("globex"), task(None)
    status, state = rest("GET", f"/tasks/{mine}", rest_user("acme"))
    assert (status, state["tenantId"]) == (200, "acme")
    status, answer = rest("GET", f"/tasks/{theirs}", rest_user("acme"))
    assert (status, answer["error"]["code"]) == (404, "TASK_NOT_FOUND")
    assert rest("GET", f"/tasks/{old}", REST_KEY)[1]["tenantId"] == "default"  # an old record is default's
    assert rest("GET", f"/tasks/{mine}", REST_KEY)[0] == 404
    assert gql("Query", "getWorkflowState", gql_user("globex"), taskId=mine) is None
    assert gql("Query", "getWorkflowState", gql_user("acme"), taskId=mine)["tenantId"] == "acme"
    assert gql("Query", "getWorkflowState", None, taskId=mine) is None  # the API key: tenant default
    assert gql("Query", "getWorkflowState", GQL_OPERATOR, taskId=mine)["tenantId"] == "acme"


def test_history_is_the_tasks_tenants_only() -> None:
    mine = task("acme")
    status, answer = rest("GET", f"/tasks/{mine}/history", rest_user("acme"))
    assert status == 200 and [item["tenantId"] for item in answer["items"]] == ["acme"]
    assert rest("GET", f"/tasks/{mine}/history", rest_user("globex"))[1]["error"]["code"] == "TASK_NOT_FOUND"
    assert gql("Query", "getWorkflowHistory", gql_user("globex"), taskId=mine) == []
    assert len(gql("Query", "getWorkflowHistory", gql_user("acme"), taskId=mine)) == 1


def test_lists_hold_the_callers_tenant_only_with_filters_and_full_pages() -> None:
    flow_id = f"f-{uuid.uuid4().hex[:6]}"
    acme = [
        task("acme", flow_id=flow_id, status="RUNNING" if i % 2 else "SUCCEEDED", started=f"2026-01-01T00:00:{i:02d}Z")
        for i in range(7)
    ]
    globex = [task("globex", flow_id=flow_id, status="RUNNING", started=f"2026-01-01T00:01:{i:02d}Z") for i in range(6)]
    seen: list[str] = []
    token = None
    while True:
        query = {"limit": 3, "flowId": flow_id} | ({"nextToken": token} if token else {})
        status, page = rest("GET", "/tasks", rest_user("acme"), **query)
        assert status == 200 and {item["tenantId"] for item in page["items"]} <= {"acme"}
        assert len(page["items"]) == 3 or page["nextToken"] is None  # pages are full while more exist
        seen += [item["taskId"] for item in page["items"]]
        token = page["nextToken"]
        if token is None:
            break
    assert seen == list(reversed(acme))  # newest first, every one, none of globex's
    running = rest("GET", "/tasks", rest_user("acme"), status="RUNNING", flowId=flow_id, limit=50)[1]["items"]
    assert [item["taskId"] for item in running] == [acme[i] for i in (5, 3, 1)]
    by_status = rest("GET", "/tasks", rest_user("globex"), status="RUNNING", limit=50)[1]["items"]
    assert {item["taskId"] for item in by_status} == set(globex)
    listed = gql("Query", "listWorkflowStates", gql_user("globex"), flowId=flow_id, limit=50)["items"]
    assert {item["taskId"] for item in listed} == set(globex)
    everyone = gql("Query", "listWorkflowStates", GQL_OPERATOR, flowId=flow_id, limit=50)["items"]
    assert {item["taskId"] for item in everyone} == set(acme) | set(globex)
    one = gql("Query", "listWorkflowStates", GQL_OPERATOR, flowId=flow_id, limit=50, tenantId="acme")["items"]
    assert {item["taskId"] for item in one} == set(acme)
    with pytest.raises(Exception, match="lists its own tenant"):
        gql("Query", "listWorkflowStates", gql_user("globex"), flowId=flow_id, tenantId="acme")
    assert not rest("GET", "/tasks", REST_KEY, flowId=flow_id)[1]["items"]  # the key: tenant default


# -- changes -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "suffix", "body", "field", "arguments"),
    [
        ("PUT", "", {"resumeToken": "t" * 40, "status": "SUCCEEDED"}, "resumeTask", {"resumeToken": "t" * 40}),
        ("POST", "/cancel", {}, "cancelTask", {}),
        ("POST", "/redrive", None, "redriveTask", {}),
        ("POST", "/heartbeat", {"resumeToken": "t" * 40}, None, {}),
    ],
    ids=["resume", "cancel", "redrive", "heartbeat"],
)
def test_another_tenants_task_cannot_be_changed_and_looks_absent(method, suffix, body, field, arguments) -> None:
    theirs = task("globex")  # final: its own tenant gets the operation's own refusal, not a 404
    status, answer = rest(method, f"/tasks/{theirs}{suffix}", rest_user("acme"), body)
    assert (status, answer["error"]["code"]) == (404, "TASK_NOT_FOUND")
    status, answer = rest(method, f"/tasks/{theirs}{suffix}", rest_user("globex"), body)
    assert answer.get("error", {}).get("code") != "TASK_NOT_FOUND"  # its own tenant reaches the operation
    if field is not None:
        if field == "resumeTask":
            arguments = {**arguments, "status": "SUCCEEDED"}
        refused = gql("Mutation", field, gql_user("acme"), taskId=theirs, **arguments)
        assert refused["error"]["code"] == "TASK_NOT_FOUND"
        assert gql("Mutation", field, None, taskId=theirs, **arguments)["error"]["code"] == "TASK_NOT_FOUND"
    assert TaskRepository().get(theirs).seq == 1  # nothing changed it


# -- starts --------------------------------------------------------------------------------------------
def test_a_start_lands_in_the_callers_tenant_and_names_are_per_tenant(sfn: list[str]) -> None:
    flow_id = f"t-{uuid.uuid4().hex[:8]}"
    FlowStore().register({"id": flow_id, "startAt": "done", "steps": {"done": {"type": "succeed"}}})
    name = f"n-{uuid.uuid4().hex[:6]}"
    status, acme = rest("POST", "/tasks", rest_user("acme"), {"flowId": flow_id, "name": name})
    assert (status, acme["tenantId"]) == (201, "acme")
    status, again = rest("POST", "/tasks", rest_user("acme"), {"flowId": flow_id, "name": name})
    assert (status, again["taskId"]) == (200, acme["taskId"])
    status, globex = rest("POST", "/tasks", rest_user("globex"), {"flowId": flow_id, "name": name})
    assert status == 201 and globex["taskId"] != acme["taskId"] and globex["tenantId"] == "globex"
    # The same name with another input is a conflict within a tenant only.
    status, other = rest("POST", "/tasks", rest_user("globex"), {"flowId": flow_id, "name": name, "input": {"x": 1}})
    assert (status, other["error"]["code"]) == (409, "IDEMPOTENCY_CONFLICT")
    keyed = rest("POST", "/tasks", REST_KEY, {"flowId": flow_id, "name": name})[1]
    assert keyed["tenantId"] == "default" and keyed["taskId"] == task_id_for(name)  # default keeps its old ids
    # GraphQL: an operator picks the tenant; a user may name only its own.
    chosen = gql("Mutation", "startTask", GQL_OPERATOR, flowId=flow_id, tenantId="initech")["data"]
    assert chosen["tenantId"] == "initech"
    assert gql("Mutation", "startTask", GQL_OPERATOR, flowId=flow_id)["data"]["tenantId"] == "default"
    refused = gql("Mutation", "startTask", gql_user("acme"), flowId=flow_id, tenantId="globex")["error"]
    assert refused["code"] == "FORBIDDEN"
    assert gql("Mutation", "startTask", gql_user("acme"), flowId=flow_id, tenantId="acme")["data"]["tenantId"] == "acme"
    assert gql("Mutation", "startTask", None, flowId=flow_id, tenantId="acme")["error"]["code"] == "FORBIDDEN"
    assert len(sfn) == 6  # one execution per task started: a repeated name or a refusal started none


def test_a_branch_record_carries_its_tasks_tenant() -> None:
    from aiwf.branches import fork

    parent = Task(str(uuid.uuid4()), "f", 1, "RUNNING", 3, NOW, NOW, tenant_id="acme")
    step = {"type": "parallel", "branches": [{"id": "a", "startAt": "s", "steps": {"s": {"type": "succeed"}}}]}
    (record_id,) = fork(parent, "p", step, {"input": {}})
    assert TaskRepository().get(record_id).tenant_id == "acme"


def test_the_catalogue_kinds_are_enforced_per_operation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callers, "allowed_kinds", lambda operation_id, api: frozenset({"operator"}))
    status, answer = rest("GET", "/tasks", REST_KEY)
    assert (status, answer["error"]["code"]) == (403, "FORBIDDEN")
    assert gql("Mutation", "cancelTask", None, taskId="x")["error"]["code"] == "FORBIDDEN"
    with pytest.raises(Exception, match="not open to a key caller"):
        gql("Query", "getWorkflowState", None, taskId="x")
