"""Fixtures for the local-stack tests: a tiny Lambda package zipped here, never `lambdas/`."""

from __future__ import annotations

import io
import textwrap
import zipfile

import pytest

HANDLER_SOURCE = textwrap.dedent(
    """
    import json
    import logging
    import os
    import sys
    import time

    import boto3

    COLD_STARTS = []
    COLD_STARTS.append(time.time())


    def echo(event, context):
        return {
            "event": event,
            "env": {k: os.environ.get(k) for k in ("ONLY_A", "ONLY_B", "AWS_ENDPOINT_URL", "PYTHONPATH")},
            "function_name": context.function_name,
            "request_id": context.aws_request_id,
            "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn,
            "remaining": context.get_remaining_time_in_millis(),
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "sys_path0": sys.path[0],
            "cold_starts": len(COLD_STARTS),
        }


    def boom(event, context):
        raise ValueError("bad input: " + json.dumps(event))


    def sleep(event, context):
        time.sleep(float(event.get("seconds", 5)))
        return {"slept": event.get("seconds", 5), "pid": os.getpid()}


    def meet(event, context):
        # A barrier: announce this call in `dir`, then wait (up to `patience` s) until `parties`
        # calls have announced themselves. Only calls that run at the same time can all meet.
        os.makedirs(event["dir"], exist_ok=True)
        open(os.path.join(event["dir"], context.aws_request_id), "w").close()
        deadline = time.time() + float(event.get("patience", 20))
        while len(os.listdir(event["dir"])) < event["parties"] and time.time() < deadline:
            time.sleep(0.01)
        return {"met": len(os.listdir(event["dir"])) >= event["parties"], "pid": os.getpid()}


    def gate(event, context):
        # Wait (up to `patience` s) for the file `gate`, then record in `done` whether it opened.
        deadline = time.time() + float(event.get("patience", 20))
        while not os.path.exists(event["gate"]) and time.time() < deadline:
            time.sleep(0.01)
        with open(event["done"] + ".tmp", "w") as out:
            out.write("opened" if os.path.exists(event["gate"]) else "gave-up")
        os.replace(event["done"] + ".tmp", event["done"])
        return "ok"


    def slow(event, context):
        # Work that is still going on when the stack is stopped (a proxy answer if it ever ends).
        time.sleep(float(event.get("seconds", 30)))
        return {"statusCode": 200, "body": "slept"}


    def start_execution(event, context):
        # A proxy handler that starts the state machine in MACHINE, from inside a worker.
        arn = boto3.client("stepfunctions").start_execution(stateMachineArn=os.environ["MACHINE"])["executionArn"]
        return {"statusCode": 201, "body": json.dumps({"executionArn": arn})}


    def crash(event, context):
        os._exit(3)


    def chatty(event, context):
        print("hello from the handler")
        logging.getLogger().warning("a warning")
        return "ok"


    def put_item(event, context):
        table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
        table.put_item(Item={**event, "fn": context.function_name})
        return {"stored": event["pk"]}


    def proxy(event, context):
        return {
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-fn": context.function_name},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
            "body": json.dumps({"event": event}),
        }


    def bad_proxy(event, context):
        return {"body": 42}
    """
)


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def handler_zip() -> bytes:
    """The deployment package of the test functions: `app.py` at the root of the zip."""
    return make_zip({"app.py": HANDLER_SOURCE, "pkg/__init__.py": "VALUE = 1\n"})


@pytest.fixture(scope="session")
def handler_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same package as a folder, for programs that declare `pulumi.FileArchive(folder)`."""
    root = tmp_path_factory.mktemp("fn")
    (root / "app.py").write_text(HANDLER_SOURCE)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.pyc").write_bytes(b"junk")
    return str(root)
