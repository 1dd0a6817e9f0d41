"""Lambda durable functions on the embedded AWS (local/durable_service.py, local/moto_glue/lambda_durable.py).

A tiny durable function (the durable execution SDK, a step and a callback) in the warm workers,
driven only through the embedded AWS's endpoint with boto3, as code does in AWS: an Invoke with
a durable execution name starts an execution (the same one for the same name), its ARN has
Lambda's shape, the durable execution APIs (get, history, callback success, stop) reach the
SDK's testing server through moto's endpoint, and the handler checkpoints through it too.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local import durable_service, embedded
from tests.local.conftest import make_zip

SOURCE = textwrap.dedent(
    """
    import os

    from aws_durable_execution_sdk_python import DurableContext, durable_execution
    from aws_durable_execution_sdk_python.config import Duration, WaitForCallbackConfig


    @durable_execution
    def handler(event, context: DurableContext):
        doubled = context.step(lambda _: event["n"] * 2, name="double")
        approval = context.wait_for_callback(
            lambda callback_id, _: open(os.path.join(event["dir"], "callback"), "w").write(callback_id),
            name="approve",
            config=WaitForCallbackConfig(timeout=Duration.from_seconds(60)),
        )
        return {"doubled": doubled, "approval": approval}
    """
)
ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@pytest.fixture(scope="module")
def lam() -> Iterator[Any]:
    shared = embedded.acquire()
    try:
        yield boto3.client("lambda", endpoint_url=shared.moto.url, region_name="us-east-1")
    finally:
        embedded.release(shared)


@pytest.fixture(scope="module")
def function(lam) -> str:
    iam = boto3.client("iam", endpoint_url=lam.meta.endpoint_url, region_name="us-east-1")
    role = iam.create_role(RoleName=f"durable-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument=ROLE)["Role"]["Arn"]
    created = lam.create_function(
        FunctionName=f"durable-{uuid.uuid4().hex[:6]}",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": SOURCE})},
        Timeout=30,
        Publish=True,
    )
    return f"{created['FunctionArn']}:{created['Version']}"


def _start(lam, function: str, name: str, tmp_path) -> str:
    response = lam.invoke(
        FunctionName=function,
        InvocationType="Event",
        DurableExecutionName=name,
        Payload=json.dumps({"n": 21, "dir": str(tmp_path)}).encode(),
    )
    assert response["StatusCode"] == 202
    return response["DurableExecutionArn"]


def _callback_id(tmp_path) -> str:
    path = tmp_path / "callback"
    deadline = time.monotonic() + 20
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.read_text()


def _status(lam, arn: str, until: str) -> str:
    deadline = time.monotonic() + 20
    while (status := lam.get_durable_execution(DurableExecutionArn=arn)["Status"]) != until:
        if time.monotonic() > deadline:
            return status
        time.sleep(0.05)
    return status


def test_an_invoke_with_a_name_starts_one_execution_whose_callback_completes_it(lam, function, tmp_path):
    name = f"run-{uuid.uuid4().hex[:8]}"
    arn = _start(lam, function, name, tmp_path)

    assert arn.startswith(f"{function}/durable-execution/{name}/")
    assert _start(lam, function, name, tmp_path) == arn  # the same name: the same execution
    callback_id = _callback_id(tmp_path)
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    lam.send_durable_execution_callback_success(CallbackId=callback_id, Result=json.dumps("yes").encode())

    assert _status(lam, arn, "SUCCEEDED") == "SUCCEEDED"
    result = json.loads(lam.get_durable_execution(DurableExecutionArn=arn)["Result"])
    assert result == {"doubled": 42, "approval": '"yes"'}  # a callback result without serdes comes as sent
    events = lam.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    assert any(event["EventType"] == "StepSucceeded" and event.get("Name") == "double" for event in events)


def test_stop_ends_a_waiting_execution(lam, function, tmp_path):
    arn = _start(lam, function, f"stop-{uuid.uuid4().hex[:8]}", tmp_path)
    callback_id = _callback_id(tmp_path)

    lam.stop_durable_execution(DurableExecutionArn=arn, Error={"ErrorType": "Cancelled", "ErrorMessage": "no"})

    assert _status(lam, arn, "STOPPED") == "STOPPED"
    # The testing server accepts a late callback (AWS answers CallbackTimeoutException); the task
    # API refuses a resume of a cancelled task before it gets this far (409). It stays stopped.
    lam.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"{}")
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "STOPPED"


def test_without_the_service_an_invoke_with_a_name_is_refused(lam, function, tmp_path, monkeypatch):
    monkeypatch.setattr(durable_service, "_service", None)

    response = lam.invoke(FunctionName=function, DurableExecutionName="nobody", Payload=b"{}")

    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "ResourceNotFoundException"
