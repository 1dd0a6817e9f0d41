"""Facts about moto 5.2.5 the local stack relies on, and the one patch it applies."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

import boto3
import pytest

from local import embedded

ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
# What the functions (a put into glue-table) and the state machines (invoking them) do, and only that:
# the embedded AWS authorizes every call against the caller's role (local/iam_enforcement.py).
ROLE_ACCESS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "dynamodb:PutItem",
                "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/glue-table",
            },
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:glue-*",
            },
        ],
    }
)


@pytest.fixture(scope="module")
def aws() -> Iterator[dict]:
    shared = embedded.acquire()  # the process's moto (other test packages may be using it too)
    moto, runtime = shared.moto, shared.runtime

    def client(service: str):
        return boto3.client(service, endpoint_url=moto.url, region_name="us-east-1")

    try:
        yield {"moto": moto, "runtime": runtime, "client": client}
    finally:
        embedded.release(shared)


@pytest.fixture(scope="module")
def functions(aws, handler_zip: bytes) -> dict[str, str]:
    iam, lam = aws["client"]("iam"), aws["client"]("lambda")
    role = iam.create_role(RoleName="glue-role", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
    iam.put_role_policy(RoleName="glue-role", PolicyName="glue-access", PolicyDocument=ROLE_ACCESS)
    aws["client"]("dynamodb").create_table(
        TableName="glue-table",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arns = {}
    for name, handler, env in (
        ("glue-echo", "echo", {"ONLY_A": "a"}),
        ("glue-boom", "boom", {}),
        ("glue-sleep", "sleep", {}),
        ("glue-gate", "gate", {}),
        ("glue-put", "put_item", {"TABLE": "glue-table"}),
    ):
        arns[name] = lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler=f"app.{handler}",
            Code={"ZipFile": handler_zip},
            Timeout=10,
            Environment={"Variables": env},
        )["FunctionArn"]
    return arns


def test_server_is_on_loopback_and_moto_port_is_set(aws):
    moto = aws["moto"]
    assert moto.url.startswith("http://127.0.0.1:")
    assert os.environ["MOTO_PORT"] == str(moto.port)


def test_invoke_api_runs_the_handler_in_a_worker(aws, functions):
    response = aws["client"]("lambda").invoke(FunctionName="glue-echo", Payload=b'{"hello": 1}')
    assert "FunctionError" not in response
    body = json.loads(response["Payload"].read())
    assert body["event"] == {"hello": 1}
    assert body["env"]["ONLY_A"] == "a"
    assert body["env"]["AWS_ENDPOINT_URL"] == aws["moto"].url
    assert body["pid"] != os.getpid()


def test_handler_error_is_unhandled_like_aws(aws, functions):
    # moto itself answers "Handled"; AWS says "Unhandled" for an exception escaping the handler
    response = aws["client"]("lambda").invoke(FunctionName="glue-boom", Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Payload"].read())
    assert set(body) >= {"errorType", "errorMessage", "stackTrace"}


def test_event_invocation_answers_202_at_once(aws, functions, tmp_path):
    # The function waits for a gate the test opens only once the invoke has answered: an invoke
    # that waited for the function would answer only after it gave up waiting.
    gate, done = tmp_path / "gate", tmp_path / "done"
    payload = json.dumps({"gate": str(gate), "done": str(done), "patience": 8}).encode()  # < Timeout
    response = aws["client"]("lambda").invoke(FunctionName="glue-gate", InvocationType="Event", Payload=payload)
    assert response["StatusCode"] == 202
    assert not done.exists()
    gate.touch()
    deadline = time.monotonic() + 60
    while not done.exists():
        assert time.monotonic() < deadline, "the event invocation never ran"
        time.sleep(0.05)
    assert done.read_text() == "opened"


def test_worker_reaches_the_embedded_aws(aws, functions):
    response = aws["client"]("lambda").invoke(FunctionName="glue-put", Payload=b'{"pk": "k1"}')
    assert json.loads(response["Payload"].read()) == {"stored": "k1"}
    item = aws["client"]("dynamodb").get_item(TableName="glue-table", Key={"pk": {"S": "k1"}})["Item"]
    assert item["fn"] == {"S": "glue-put"}


def test_step_functions_engine_invokes_lambda_through_the_workers(aws, functions):
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 3,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Call",
                    "States": {
                        "Call": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {"FunctionName": functions["glue-echo"], "Payload.$": "$"},
                            "ResultSelector": {"fn.$": "$.Payload.function_name", "event.$": "$.Payload.event"},
                            "End": True,
                        }
                    },
                },
                "ResultPath": "$.fan",
                "Next": "Fail",
            },
            "Fail": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": functions["glue-boom"], "Payload": {}},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}],
                "ResultPath": "$.never",
                "End": True,
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    sfn = aws["client"]("stepfunctions")
    machine = sfn.create_state_machine(
        name="glue-machine", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/glue-role"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"items": [1, 2, 3]}))
    deadline = time.monotonic() + 20
    while True:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["fan"] == [{"fn": "glue-echo", "event": n} for n in (1, 2, 3)]
    error = output["error"]
    assert error["Error"] == "ValueError"
    assert json.loads(error["Cause"])["errorType"] == "ValueError"


def test_a_stop_that_lands_mid_choice_aborts_the_execution(aws, functions, monkeypatch):
    from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice

    sfn = aws["client"]("stepfunctions")
    original = StateChoice._eval_state

    def stopped_while_evaluating(self, env):  # the stop lands after Route took its input, before its rules
        if self.name == "Route":
            execution = env.states.context_object.context_object_data["Execution"]["Id"]
            sfn.stop_execution(executionArn=execution, error="Test.Stop", cause="mid-Choice")
        return original(self, env)

    monkeypatch.setattr(StateChoice, "_eval_state", stopped_while_evaluating)
    definition = {
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [  # more rules than the stack holds values, as in the orchestrator's Route
                    {"Variable": "$.action", "StringEquals": action, "Next": "Done"} for action in "ABCD"
                ],
                "Default": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name="glue-stop-machine", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/glue-role"
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input='{"action": "D"}')["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution never ended"
        time.sleep(0.05)
    assert described["status"] == "ABORTED", described


def _callback_machine(sfn, functions, name: str, heartbeat: int | None, in_map: bool) -> str:
    wait: dict = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": functions["glue-put"], "Payload": {"pk.$": "$.pk", "token.$": "$$.Task.Token"}},
        "TimeoutSeconds": 60,
        "End": True,
    }
    if heartbeat:
        wait["HeartbeatSeconds"] = heartbeat
    states: dict = {"Wait": wait}
    if in_map:  # a parallel branch of the orchestrator: an inline Map iteration of the same execution
        states = {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Wait", "States": states},
                "End": True,
            }
        }
    definition = {"StartAt": next(iter(states)), "States": states}
    return sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/glue-role"
    )["stateMachineArn"]


def _token_of(aws, pk: str) -> str:
    table = aws["client"]("dynamodb")
    deadline = time.monotonic() + 20
    while "Item" not in (found := table.get_item(TableName="glue-table", Key={"pk": {"S": pk}})):
        assert time.monotonic() < deadline, "the callback task never ran"
        time.sleep(0.05)
    return found["Item"]["token"]["S"]


def _engine_threads() -> set[threading.Thread]:
    """The threads running moto's Step Functions engine now: an execution's own, a Map iteration's."""
    return {
        thread
        for thread in threading.enumerate()
        if type(getattr(getattr(thread, "_target", None), "__self__", None)).__module__.startswith("moto.stepfunctions")
    }


def _until_event(sfn, arn: str, event_type: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while event_type not in {e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]}:
        assert time.monotonic() < deadline, f"no {event_type} event in {within} s"
        time.sleep(0.05)


def _ended(sfn, arn: str, within: float) -> dict:
    deadline = time.monotonic() + within
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"the execution still runs after {within} s"
        time.sleep(0.05)
    return described


@pytest.mark.parametrize(
    ("heartbeat", "in_map"), [(None, False), (30, False), (None, True)], ids=["plain", "heartbeat", "in-map"]
)
def test_a_stop_ends_a_callback_wait_at_once(aws, functions, heartbeat, in_map):
    """moto 5.2.5 left a stopped execution in its callback state until the wait's timeout (60 s here)."""
    sfn = aws["client"]("stepfunctions")
    name = f"glue-cb-stop-{heartbeat}-{in_map}".lower()
    machine = _callback_machine(sfn, functions, name, heartbeat, in_map)
    pk = f"{name}-key"
    payload = {"items": [{"pk": pk}]} if in_map else {"pk": pk}
    before = _engine_threads()
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload))["executionArn"]
    _token_of(aws, pk)
    _until_event(sfn, arn, "TaskSubmitted")  # the function answered: the callback wait has begun
    engine = _engine_threads() - before  # this execution's (and, in a Map, its iteration's) threads
    assert engine, "no engine thread runs the execution"
    sfn.stop_execution(executionArn=arn, error="Cancelled", cause="by a test")
    described = _ended(sfn, arn, within=5)
    assert described["status"] == "ABORTED", described
    for thread in engine:  # the engine is done with the execution: no event can come after these end
        thread.join(timeout=10)
        assert not thread.is_alive(), f"{thread} still runs after the abort"
    events = sfn.get_execution_history(executionArn=arn)["events"]
    assert events[-1]["type"] == "ExecutionAborted", events[-3:]


def test_heartbeats_keep_a_callback_wait_alive_and_a_missed_one_ends_it(aws, functions):
    sfn = aws["client"]("stepfunctions")
    machine = _callback_machine(sfn, functions, "glue-cb-heartbeat", 2, False)
    alive = sfn.start_execution(stateMachineArn=machine, name="alive", input='{"pk": "glue-hb-alive"}')["executionArn"]
    token = _token_of(aws, "glue-hb-alive")
    for _ in range(8):  # 4 s of heartbeats every 0.5 s: twice the heartbeat interval
        sfn.send_task_heartbeat(taskToken=token)
        time.sleep(0.5)
    assert sfn.describe_execution(executionArn=alive)["status"] == "RUNNING"
    sfn.send_task_success(taskToken=token, output='{"ok": true}')
    assert _ended(sfn, alive, within=5)["status"] == "SUCCEEDED"

    missed = sfn.start_execution(stateMachineArn=machine, name="missed", input='{"pk": "glue-hb-missed"}')[
        "executionArn"
    ]
    _token_of(aws, "glue-hb-missed")
    described = _ended(sfn, missed, within=8)
    assert described["status"] == "FAILED" and described["error"] == "States.HeartbeatTimeout", described


def _sync_client(aws) -> object:
    """A client as an SDK user on the local stack has it: host prefix injection off (the
    StartSyncExecution endpoint is `sync-states...`; prefixing 127.0.0.1 cannot resolve)."""
    from botocore.config import Config

    return boto3.client(
        "stepfunctions",
        endpoint_url=aws["moto"].url,
        region_name="us-east-1",
        config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}),
    )


def test_start_sync_execution_runs_an_express_execution_to_its_end(aws, functions):
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": functions["glue-echo"],
                    "Payload": {"started.$": "$$.Execution.StartTime"},
                },
                "OutputPath": "$.Payload.event",
                "End": True,
            }
        },
    }
    sfn = _sync_client(aws)
    machine = sfn.create_state_machine(
        name="glue-express",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/glue-role",
        type="EXPRESS",
    )["stateMachineArn"]
    result = sfn.start_sync_execution(stateMachineArn=machine, name="run-1", input="{}")
    assert result["status"] == "SUCCEEDED", result
    assert result["executionArn"].startswith(machine.replace(":stateMachine:", ":express:") + ":run-1:")
    assert json.loads(result["output"])["started"]  # the context object's StartTime reaches the task
    failing = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Nope", "Cause": "no"}}}
    failed_machine = sfn.create_state_machine(
        name="glue-express-fail",
        definition=json.dumps(failing),
        roleArn="arn:aws:iam::123456789012:role/glue-role",
        type="EXPRESS",
    )["stateMachineArn"]
    failed = sfn.start_sync_execution(stateMachineArn=failed_machine, input="{}")
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "Nope", "no")
    assert "output" not in failed


def test_express_refuses_what_aws_refuses(aws, functions):
    sfn = _sync_client(aws)
    callback = {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": functions["glue-echo"], "Payload": {"t.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    with pytest.raises(sfn.exceptions.InvalidDefinition, match="waitForTaskToken"):
        sfn.create_state_machine(
            name="glue-express-callback",
            definition=json.dumps(callback),
            roleArn="arn:aws:iam::123456789012:role/r",
            type="EXPRESS",
        )
    standard = sfn.create_state_machine(
        name="glue-standard-callback", definition=json.dumps(callback), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    with pytest.raises(sfn.exceptions.StateMachineTypeNotSupported):
        sfn.start_sync_execution(stateMachineArn=standard, input="{}")
