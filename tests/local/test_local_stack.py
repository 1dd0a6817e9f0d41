"""LocalStack end to end on a tiny Pulumi program of our own: mocks, outputs, REST API, state machine."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local import LocalStack
from local.stack import load_config

PROGRAM = textwrap.dedent(
    """
    import json

    import pulumi
    import pulumi_aws as aws

    cfg = pulumi.Config()
    stage = pulumi.get_stack()
    region = aws.get_region().region
    account = aws.get_caller_identity().account_id
    assume = aws.iam.get_policy_document(statements=[{
        "actions": ["sts:AssumeRole"],
        "principals": [{"type": "Service", "identifiers": ["lambda.amazonaws.com", "states.amazonaws.com"]}],
    }])
    # one role for the functions and the state machines (the local stack authorizes every call)
    role = aws.iam.Role("fn-role", assume_role_policy=assume.json)
    aws.iam.RolePolicy("fn-policy", role=role.id, policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Resource": "*",
                       "Action": ["dynamodb:PutItem", "states:StartExecution", "lambda:InvokeFunction"]}]}))
    table = aws.dynamodb.Table(
        "items", name=f"tiny-{stage}-items", hash_key="pk", range_key="sk", billing_mode="PAY_PER_REQUEST",
        attributes=[{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}, {"name": "gk", "type": "S"}],
        global_secondary_indexes=[{"name": "by-g", "hash_key": "gk", "projection_type": "ALL"}],
        stream_enabled=True, stream_view_type="NEW_AND_OLD_IMAGES")
    bucket = aws.s3.Bucket("payloads")
    code = pulumi.FileArchive(cfg.require("codeDir"))
    layer = aws.lambda_.LayerVersion("deps", layer_name="deps", code=pulumi.FileArchive("does-not-exist.zip"),
                                     compatible_runtimes=["python3.12"])
    common = dict(runtime="python3.12", role=role.arn, code=code, layers=[layer.arn],
                  timeout=cfg.get_int("timeout"), memory_size=256)
    api_fn = aws.lambda_.Function(
        "api", name=f"tiny-{stage}-api", handler="app.proxy",
        environment={"variables": {"TABLE": table.name, "LEVEL": cfg.require("logLevel")}}, **common)
    bad_fn = aws.lambda_.Function("bad", name=f"tiny-{stage}-bad", handler="app.bad_proxy", **common)
    boom_fn = aws.lambda_.Function("boom", name=f"tiny-{stage}-boom", handler="app.boom", **common)
    put_fn = aws.lambda_.Function("put", name=f"tiny-{stage}-put", handler="app.put_item",
                                  environment={"variables": {"TABLE": table.name}}, **common)
    # Long work for stopping the stack in the middle of it: an execution busy in a Lambda, then parked
    # in a Wait, started from a worker (POST /tasks), and a request served by a slow worker (GET /slow).
    slow_fn = aws.lambda_.Function("slow", name=f"tiny-{stage}-slow", handler="app.slow", **{**common, "timeout": 60})
    slow_machine = aws.sfn.StateMachine(
        "slow-machine", name=f"tiny-{stage}-slow", role_arn=role.arn,
        definition=slow_fn.arn.apply(lambda arn: json.dumps({"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                     "Parameters": {"FunctionName": arn, "Payload": {"seconds": 30}}, "Next": "Park"},
            "Park": {"Type": "Wait", "Seconds": 600, "End": True}}})))
    starter_fn = aws.lambda_.Function("starter", name=f"tiny-{stage}-starter", handler="app.start_execution",
                                      environment={"variables": {"MACHINE": slow_machine.arn}}, **common)
    machine = aws.sfn.StateMachine(
        "machine", name=f"tiny-{stage}", role_arn=role.arn,
        definition=put_fn.arn.apply(lambda arn: json.dumps({"StartAt": "Put", "States": {"Put": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": arn, "Payload.$": "$"}, "OutputPath": "$.Payload", "End": True}}})))

    def op(fn_arn, secured=True):
        operation = {"x-amazon-apigateway-integration": {
            "type": "aws_proxy", "httpMethod": "POST",
            "uri": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{fn_arn}/invocations"}}
        if secured:
            operation["security"] = [{"api_key": []}]
        return operation

    arns = pulumi.Output.all(api_fn.arn, bad_fn.arn, boom_fn.arn, slow_fn.arn, starter_fn.arn)
    body = arns.apply(lambda arns: json.dumps({
        "openapi": "3.0.1", "info": {"title": "tiny", "version": "1"},
        "components": {"securitySchemes": {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}}},
        "paths": {
            "/items": {"post": op(arns[0]), "get": op(arns[0])},
            "/items/{itemId}": {"get": op(arns[0])},
            "/items/special": {"get": op(arns[0], secured=False)},
            "/bad": {"get": op(arns[1])},
            "/boom": {"get": op(arns[2])},
            "/slow": {"get": op(arns[3])},
            "/tasks": {"post": op(arns[4])},
        }}))
    api = aws.apigateway.RestApi("api", name="tiny", body=body)
    deployment = aws.apigateway.Deployment("deployment", rest_api=api.id)
    stage_res = aws.apigateway.Stage("stage", rest_api=api.id, deployment=deployment.id, stage_name=stage)
    key = aws.apigateway.ApiKey("key")
    plan = aws.apigateway.UsagePlan("plan", api_stages=[{"api_id": api.id, "stage": stage_res.stage_name}])
    aws.apigateway.UsagePlanKey("plan-key", key_id=key.id, key_type="API_KEY", usage_plan_id=plan.id)
    aws.lambda_.Permission("invoke", action="lambda:InvokeFunction", function=api_fn.name,
                           principal="apigateway.amazonaws.com")

    pulumi.export("stage", stage)
    pulumi.export("taskApiUrl", stage_res.invoke_url)
    pulumi.export("apiKey", key.value)
    pulumi.export("stateMachineArn", machine.arn)
    pulumi.export("tableStream", table.stream_arn)
    pulumi.export("bucket", bucket.bucket)
    pulumi.export("account", account)
    pulumi.export("invokeArn", api_fn.invoke_arn)
    """
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, handler_dir: str) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    (root / "Pulumi.yaml").write_text("name: tiny\nruntime: python\nconfig:\n  timeout:\n    default: 5\n")
    (root / "Pulumi.dev.yaml").write_text(
        f"config:\n  aws:region: us-east-1\n  tiny:logLevel: DEBUG\n  tiny:codeDir: {handler_dir}\n"
        "  tiny:flag: true\n  tiny:nested:\n    a: 1\n"
    )
    (root / "__main__.py").write_text(PROGRAM)
    return root


@pytest.fixture(scope="module")
def stack(project: Path) -> Iterator[LocalStack]:
    with LocalStack(stage="dev", port=0, project_dir=project, outputs_path=project / ".local" / "outputs.json") as s:
        yield s


def test_config_is_passed_as_the_cli_does(project: Path):
    name, config = load_config(project, "dev")
    assert name == "tiny"
    assert config["tiny:timeout"] == "5"
    assert config["tiny:flag"] == "true"
    assert json.loads(config["tiny:nested"]) == {"a": 1}
    assert config["aws:region"] == "us-east-1"


def test_outputs_are_resolved_and_written(stack: LocalStack, project: Path):
    outputs = stack.outputs
    assert outputs["taskApiUrl"] == f"http://127.0.0.1:{stack.port}/dev"
    assert stack.port != 0
    assert outputs["stage"] == "dev"
    assert outputs["apiKey"] and isinstance(outputs["apiKey"], str)
    assert outputs["stateMachineArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:tiny-dev"
    assert outputs["tableStream"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/tiny-dev-items/stream/")
    assert outputs["account"] == "123456789012"
    assert outputs["invokeArn"] == (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:us-east-1:123456789012:function:tiny-dev-api/invocations"
    )
    written = json.loads((project / ".local" / "outputs.json").read_text())
    assert written == outputs
    # the API key and the local admin credentials: the owner's only
    assert stat.S_IMODE((project / ".local" / "outputs.json").stat().st_mode) == 0o600


def test_resources_exist_in_the_embedded_aws(stack: LocalStack, handler_dir: str):
    table = stack.client("dynamodb").describe_table(TableName="tiny-dev-items")["Table"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-g"]
    assert stack.client("s3").head_bucket(Bucket=stack.outputs["bucket"])
    fn = stack.client("lambda").get_function(FunctionName="tiny-dev-api")["Configuration"]
    assert fn["Handler"] == "app.proxy" and fn["Timeout"] == 5 and fn["MemorySize"] == 256
    assert fn["Environment"]["Variables"] == {"TABLE": "tiny-dev-items", "LEVEL": "DEBUG"}
    assert stack.registry.functions["tiny-dev-api"].handler == "app.proxy"


def test_rest_api_builds_a_real_proxy_event(stack: LocalStack):
    url, key = stack.outputs["taskApiUrl"], stack.outputs["apiKey"]
    response = requests.post(
        f"{url}/items?a=1&a=2&b=3",
        data='{"x": 1}',
        headers={"x-api-key": key, "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 201
    assert response.headers["x-fn"] == "tiny-dev-api"
    assert response.headers["set-cookie"] == "a=1, b=2"
    event = response.json()["event"]
    assert event["resource"] == "/items" and event["path"] == "/items" and event["httpMethod"] == "POST"
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False
    assert event["queryStringParameters"] == {"a": "2", "b": "3"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert event["headers"]["x-api-key"] == key
    assert event["multiValueHeaders"]["content-type"] == ["application/json"]
    assert event["pathParameters"] is None and event["stageVariables"] is None
    ctx = event["requestContext"]
    assert ctx["resourcePath"] == "/items" and ctx["stage"] == "dev" and ctx["path"] == "/dev/items"
    assert ctx["identity"]["apiKey"] == key and ctx["accountId"] == "123456789012"
    assert ctx["httpMethod"] == "POST" and ctx["protocol"] == "HTTP/1.1" and ctx["requestId"]
    assert isinstance(ctx["requestTimeEpoch"], int) and ctx["apiId"]

    item = requests.get(f"{url}/items/abc", headers={"x-api-key": key}, timeout=30).json()["event"]
    assert item["resource"] == "/items/{itemId}" and item["pathParameters"] == {"itemId": "abc"}
    special = requests.get(f"{url}/items/special", timeout=30).json()["event"]  # literal path wins, no key
    assert special["resource"] == "/items/special" and special["pathParameters"] is None


def test_api_key_and_unknown_routes_are_refused_like_api_gateway(stack: LocalStack):
    url, key = stack.outputs["taskApiUrl"], stack.outputs["apiKey"]
    for headers in ({}, {"x-api-key": "wrong"}):
        response = requests.get(f"{url}/items", headers=headers, timeout=30)
        assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
    for method, path in (("GET", "/nothing"), ("DELETE", "/items")):
        response = requests.request(method, f"{url}{path}", headers={"x-api-key": key}, timeout=30)
        assert (response.status_code, response.json()) == (403, {"message": "Missing Authentication Token"})
    wrong_stage = requests.get(f"http://127.0.0.1:{stack.port}/prod/items", headers={"x-api-key": key})
    assert wrong_stage.status_code == 403


def test_function_errors_and_malformed_responses_are_502(stack: LocalStack):
    url, key = stack.outputs["taskApiUrl"], stack.outputs["apiKey"]
    for path in ("/bad", "/boom"):
        response = requests.get(f"{url}{path}", headers={"x-api-key": key}, timeout=30)
        assert (response.status_code, response.json()) == (502, {"message": "Internal server error"})


def test_state_machine_runs_on_the_workers(stack: LocalStack):
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=stack.outputs["stateMachineArn"], input=json.dumps({"pk": "from-sfn", "sk": "x"})
    )["executionArn"]
    deadline = time.monotonic() + 20
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"stored": "from-sfn"}
    item = stack.client("dynamodb").get_item(
        TableName="tiny-dev-items", Key={"pk": {"S": "from-sfn"}, "sk": {"S": "x"}}
    )
    assert item["Item"]["fn"] == {"S": "tiny-dev-put"}


def test_stacks_in_one_process_share_the_embedded_aws(stack: LocalStack, project: Path, handler_dir: str):
    (project / "Pulumi.other.yaml").write_text(
        f"config:\n  aws:region: us-east-1\n  tiny:logLevel: INFO\n  tiny:codeDir: {handler_dir}\n"
    )
    with LocalStack(stage="other", port=0, project_dir=project) as other:
        assert other.endpoint_url == stack.endpoint_url
        assert other.outputs["taskApiUrl"].endswith("/other") and other.port != stack.port
        response = requests.get(
            other.outputs["taskApiUrl"] + "/items", headers={"x-api-key": other.outputs["apiKey"]}, timeout=30
        )
        assert response.status_code == 201
    response = requests.get(  # the first stack still serves, with its functions and moto
        stack.outputs["taskApiUrl"] + "/items", headers={"x-api-key": stack.outputs["apiKey"]}, timeout=30
    )
    assert response.status_code == 201
    assert stack.client("dynamodb").describe_table(TableName="tiny-dev-items")


def _children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (Linux /proc)."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(status.parent.name))
    return found


def _get_quietly(url: str, headers: dict[str, str]) -> None:
    """A request that may still be waiting when the stack stops (whatever it gets, if anything)."""
    with contextlib.suppress(requests.RequestException):
        requests.get(url, headers=headers, timeout=60)


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.parametrize("stop", ["sigterm", "ctrl-c"])
def test_cli_serves_writes_outputs_and_stops_cleanly(project: Path, tmp_path: Path, stop: str):
    """SIGTERM reaches the stack alone; a terminal's Ctrl-C reaches its whole process group, Lambda
    workers included, and still nothing but the stack's own shutdown shows (no worker tracebacks).
    The stack is stopped in the middle of work: an execution busy in a Lambda and a request waiting
    on another; it neither waits for them nor leaves a worker behind."""
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text("{}")  # stale: must be replaced, not read as ready
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--project-dir", str(project), "--port", "0", "--outputs", str(outputs_file)],
        cwd=str(Path(__file__).resolve().parents[2]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        deadline = time.monotonic() + 60
        while not (outputs_file.exists() and outputs_file.read_text() not in ("", "{}")):
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.1)
        outputs = json.loads(outputs_file.read_text())
        assert set(outputs) >= {"taskApiUrl", "apiKey", "stateMachineArn", "stage"}
        response = requests.get(outputs["taskApiUrl"] + "/items", headers={"x-api-key": outputs["apiKey"]}, timeout=30)
        assert response.status_code == 201
        assert _children(process.pid), "the request was served by a Lambda worker process"
        headers = {"x-api-key": outputs["apiKey"]}
        started = requests.post(outputs["taskApiUrl"] + "/tasks", headers=headers, timeout=30)
        assert started.status_code == 201, started.text
        in_flight = threading.Thread(target=_get_quietly, args=(outputs["taskApiUrl"] + "/slow", headers), daemon=True)
        in_flight.start()
        # api, starter, and two workers of the slow function: one for the execution, one for GET /slow
        deadline = time.monotonic() + 60
        while len(workers := _children(process.pid)) < 4:
            assert process.poll() is None and time.monotonic() < deadline, f"{len(workers)} workers"
            time.sleep(0.1)
        if stop == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=20) == 0
        output = process.stdout.read() if process.stdout else ""
        assert '"taskApiUrl"' in output and "stopping" in output
        # From the moment it serves (start-up has its own tests): the requests, the stop, nothing else.
        served = output[output.index("Serving on") :]
        for unwanted in ("Traceback", "KeyboardInterrupt"):
            assert unwanted not in served, served[max(0, served.find(unwanted) - 1500) :][:6000]
        # nor what the engine would say about the execution it was cut off from
        after_stop = served[served.index("stopping") :]
        assert not re.search(r"moto|[Dd]ocker|Exception|exited during", after_stop), after_stop[-3000:]
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a Lambda worker outlived the stack"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
