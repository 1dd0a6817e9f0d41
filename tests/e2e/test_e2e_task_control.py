"""Task control over GraphQL with an unmodified `gql` client on the local stack: start a task and
watch it on the subscription, resume a wait, cancel, read and (IAM) register and retire flows; the
REST error `code` is the GraphQL `errorType`, and no answer carries a resume token."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError

from tests.e2e.conftest import FINAL, REPO_ROOT, STATE_FIELDS, Deployed, run, watch
from tests.integration.stub_server import StubServer, start_stub

HELLO = yaml.safe_load((REPO_ROOT / "flows" / "hello.yaml").read_text())
START = gql(
    "mutation Start($flowId: String!, $input: AWSJSON, $name: String) {"
    f"  startTask(flowId: $flowId, input: $input, name: $name) {{ {STATE_FIELDS} }}"
    "}"
)
RESUME = gql(
    "mutation Resume($taskId: ID!, $resumeToken: String!, $status: ResumeStatus!, $output: AWSJSON,"
    "  $error: WorkflowErrorInput) {"
    "  resumeTask(taskId: $taskId, resumeToken: $resumeToken, status: $status, output: $output, error: $error)"
    f"  {{ {STATE_FIELDS} }}"
    "}"
)
CANCEL = gql(
    "mutation Cancel($taskId: ID!, $reason: String) {"
    f"  cancelTask(taskId: $taskId, reason: $reason) {{ {STATE_FIELDS} }}"
    "}"
)
FLOW_FIELDS = "flowId version retired updatedAt document"
GET_FLOW = gql(
    "query GetFlow($flowId: String!, $version: Int) {"
    f"  getFlow(flowId: $flowId, version: $version) {{ {FLOW_FIELDS} }}"
    "}"
)
LIST_FLOWS = gql(
    "query ListFlows($limit: Int, $nextToken: String) {"
    f"  listFlows(limit: $limit, nextToken: $nextToken) {{ items {{ {FLOW_FIELDS} }} nextToken }}"
    "}"
)
PUT_FLOW = gql(f"mutation PutFlow($document: AWSJSON!) {{ putFlow(document: $document) {{ {FLOW_FIELDS} }} }}")
RETIRE_FLOW = gql(f"mutation RetireFlow($flowId: String!) {{ retireFlow(flowId: $flowId) {{ {FLOW_FIELDS} }} }}")


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    server = start_stub()
    yield server
    server.server.shutdown()


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Answers:
    """Every GraphQL answer of a test, to check that none carries a resume token."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def call(self, transport: Any, operation: Any, /, **variables: Any) -> dict[str, Any]:
        async with Client(transport=transport) as session:
            try:
                result = await session.execute(GraphQLRequest(operation, variable_values=variables))
            except TransportQueryError as exc:
                self.seen.append({"errors": exc.errors, "data": exc.data})
                raise
        self.seen.append(result)
        return result

    async def error(self, transport: Any, operation: Any, /, **variables: Any) -> dict[str, Any]:
        with pytest.raises(TransportQueryError) as raised:
            await self.call(transport, operation, **variables)
        [error] = raised.value.errors or []
        return error

    def never_show(self, token: str) -> None:
        assert token not in json.dumps(self.seen)


def _hello(flow_id: str) -> str:
    return json.dumps({**HELLO, "id": flow_id})


def test_start_a_task_and_watch_it_to_the_end_on_the_subscription(deployed: Deployed) -> None:
    answers = Answers()
    flow_id = _id("e2e-gql")

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        await answers.call(deployed.iam_http(), PUT_FLOW, document=_hello(flow_id))
        received: list[dict[str, Any]] = []
        started: dict[str, Any] = {}

        def ended(states: list[dict[str, Any]]) -> bool:
            mine = started.get("taskId")
            return any(s["taskId"] == mine and s["status"] in FINAL and s["branchId"] is None for s in states)

        before = deployed.subscriptions()
        listener = asyncio.create_task(watch(deployed.api_key_ws(), {"flowId": flow_id}, ended, received))
        await deployed.until_subscribed(before + 1)
        result = await answers.call(
            deployed.api_key_http(), START, flowId=flow_id, input=json.dumps({"name": "Ada"}), name=_id("n")
        )
        started.update(result["startTask"])
        await listener
        return started, received

    started, received = run(scenario())
    assert started["flowId"] == flow_id and started["flowVersion"] == 1 and started["status"] in ("PENDING", "RUNNING")
    mine = [s for s in received if s["taskId"] == started["taskId"]]
    assert mine[-1]["status"] == "SUCCEEDED"
    assert json.loads(mine[-1]["output"]) == {"greeting": "Hello, Ada!", "name": "Ada"}
    assert [s["seq"] for s in mine] == sorted({s["seq"] for s in mine})


def _waiting_flow(stub: StubServer, flow_id: str, notify_path: str) -> str:
    return json.dumps(
        {
            "id": flow_id,
            "startAt": "approve",
            "steps": {
                "approve": {
                    "type": "wait_for_event",
                    "timeoutSeconds": 120,
                    "notify": {"url": stub.url + notify_path},
                    "resultPath": "approval",
                    "next": "done",
                },
                "done": {"type": "succeed", "outputPath": "approval"},
            },
        }
    )


def test_resume_and_cancel_over_graphql_with_the_rest_error_codes(deployed: Deployed, stub: StubServer) -> None:
    answers = Answers()
    flow_id = _id("e2e-gql-wait")
    notify = f"/{flow_id}/notify"

    async def start_waiting() -> tuple[str, str]:
        result = await answers.call(deployed.api_key_http(), START, flowId=flow_id, input=json.dumps({"doc": 1}))
        task_id = result["startTask"]["taskId"]
        for _ in range(200):
            seen = [r.body for r in stub.received(notify) if r.body["taskId"] == task_id]
            if seen:
                return task_id, seen[-1]["resumeToken"]
            await asyncio.sleep(0.05)
        raise AssertionError("the wait never notified")

    async def scenario() -> None:
        await answers.call(deployed.iam_http(), PUT_FLOW, document=_waiting_flow(stub, flow_id, notify))
        task_id, token = await start_waiting()
        key = deployed.api_key_http
        wrong = await answers.error(key(), RESUME, taskId=task_id, resumeToken="not-the-token", status="SUCCEEDED")
        assert wrong["errorType"] == "WRONG_TOKEN" and wrong["path"] == ["resumeTask"]
        resumed = await answers.call(
            key(), RESUME, taskId=task_id, resumeToken=token, status="SUCCEEDED", output=json.dumps({"ok": True})
        )
        assert resumed["resumeTask"]["taskId"] == task_id
        final = await asyncio.to_thread(deployed.wait_final, task_id)
        assert final["status"] == "SUCCEEDED" and final["output"] == {"ok": True}
        again = await answers.error(key(), RESUME, taskId=task_id, resumeToken=token, status="SUCCEEDED")
        assert again["errorType"] == "NOT_WAITING"
        done = await answers.error(key(), CANCEL, taskId=task_id)
        assert done["errorType"] == "ALREADY_FINAL"
        answers.never_show(token)

        task_id, token = await start_waiting()
        cancelled = (await answers.call(key(), CANCEL, taskId=task_id, reason="not needed"))["cancelTask"]
        assert cancelled["status"] == "ABORTED"
        assert (cancelled["error"]["errorName"], cancelled["error"]["errorMessage"]) == ("Cancelled", "not needed")
        late = await answers.error(
            key(), RESUME, taskId=task_id, resumeToken=token, status="FAILED", error={"errorName": "Rejected"}
        )
        assert late["errorType"] == "NOT_WAITING"
        missing = await answers.error(key(), CANCEL, taskId="no-such-task")
        assert missing["errorType"] == "TASK_NOT_FOUND"
        answers.never_show(token)

    run(scenario())


def test_flows_over_graphql_iam_registers_and_retires_api_key_reads(deployed: Deployed) -> None:
    answers = Answers()
    flow_id = _id("e2e-gql-flows")

    async def scenario() -> None:
        key, iam = deployed.api_key_http, deployed.iam_http
        for document, variables in ((PUT_FLOW, {"document": _hello(flow_id)}), (RETIRE_FLOW, {"flowId": flow_id})):
            refused = await answers.error(key(), document, **variables)
            field = "putFlow" if document is PUT_FLOW else "retireFlow"
            assert refused["errorType"] == "Unauthorized"
            assert refused["message"] == f"Not Authorized to access {field} on type Mutation"
        assert (await answers.call(key(), GET_FLOW, flowId=flow_id))["getFlow"] is None

        put = (await answers.call(iam(), PUT_FLOW, document=_hello(flow_id)))["putFlow"]
        assert (put["flowId"], put["version"], put["retired"]) == (flow_id, 1, False)
        assert json.loads(put["document"])["startAt"] == HELLO["startAt"]
        second = await answers.call(iam(), PUT_FLOW, document=json.dumps({**HELLO, "id": flow_id, "description": "v2"}))
        assert second["putFlow"]["version"] == 2
        got = (await answers.call(key(), GET_FLOW, flowId=flow_id, version=1))["getFlow"]
        assert got["version"] == 1 and json.loads(got["document"]) == {**HELLO, "id": flow_id}
        assert (await answers.call(key(), GET_FLOW, flowId=flow_id))["getFlow"]["version"] == 2

        found, token = None, None
        while found is None:
            page = (await answers.call(key(), LIST_FLOWS, limit=100, nextToken=token))["listFlows"]
            found = next((f for f in page["items"] if f["flowId"] == flow_id), None)
            token = page["nextToken"]
            if token is None:
                break
        assert found == {**found, "version": 2, "retired": False, "document": None}

        invalid = await answers.error(
            iam(), PUT_FLOW, document=json.dumps({"id": flow_id, "startAt": "x", "steps": {}})
        )
        assert invalid["errorType"] == "INVALID_FLOW" and invalid["errorInfo"]["details"]

        name = _id("n")
        await answers.call(key(), START, flowId=flow_id, input=json.dumps({"name": "A"}), name=name)
        conflict = await answers.error(key(), START, flowId=flow_id, input=json.dumps({"name": "B"}), name=name)
        assert conflict["errorType"] == "IDEMPOTENCY_CONFLICT"
        not_object = await answers.error(key(), START, flowId=flow_id, input=json.dumps([1]))
        assert not_object["errorType"] == "INVALID_REQUEST"
        unknown = await answers.error(key(), START, flowId=_id("e2e-gql-none"), input=json.dumps({}))
        assert unknown["errorType"] == "FLOW_NOT_FOUND"

        retired = (await answers.call(iam(), RETIRE_FLOW, flowId=flow_id))["retireFlow"]
        assert (retired["flowId"], retired["version"], retired["retired"]) == (flow_id, 2, True)
        refused = await answers.error(key(), START, flowId=flow_id, input=json.dumps({"name": "C"}))
        assert refused["errorType"] == "FLOW_RETIRED"
        assert (await answers.call(key(), GET_FLOW, flowId=flow_id))["getFlow"]["retired"] is True
        gone = await answers.error(iam(), RETIRE_FLOW, flowId=_id("e2e-gql-none"))
        assert gone["errorType"] == "FLOW_NOT_FOUND"

    run(scenario())
