"""The warm worker pool: isolation, timeouts, error shapes, crash recovery, growth under load."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from local.lambda_runtime import FunctionConfig, LambdaRuntime

ENDPOINT = "http://127.0.0.1:9"  # never called by these handlers


@pytest.fixture
def runtime() -> Iterator[LambdaRuntime]:
    rt = LambdaRuntime(ENDPOINT, max_workers_per_function=3)
    yield rt
    rt.close()


@pytest.fixture
def make_config(handler_zip: bytes):
    def make(name: str, handler: str, **kwargs) -> FunctionConfig:
        return FunctionConfig(
            name=name,
            arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
            handler=f"app.{handler}",
            code_zip=handler_zip,
            **kwargs,
        )

    return make


def test_environment_is_only_the_functions_own(runtime, make_config):
    a = runtime.invoke(make_config("fn-a", "echo", environment={"ONLY_A": "a"}), '{"n": 1}').json
    b = runtime.invoke(make_config("fn-b", "echo", environment={"ONLY_B": "b"}), '{"n": 2}').json
    assert a["env"]["ONLY_A"] == "a" and a["env"]["ONLY_B"] is None
    assert b["env"]["ONLY_B"] == "b" and b["env"]["ONLY_A"] is None
    assert a["env"]["AWS_ENDPOINT_URL"] == ENDPOINT
    assert a["env"]["PYTHONPATH"] is None
    assert a["pid"] != b["pid"]
    assert a["cwd"] == a["sys_path0"] and a["cwd"] != b["cwd"]
    assert a["event"] == {"n": 1}
    assert a["function_name"] == "fn-a" and a["memory"] == "128"
    assert a["arn"].endswith(":function:fn-a")
    assert 0 < a["remaining"] <= 3000


def test_worker_stays_warm(runtime, make_config):
    config = make_config("fn-warm", "echo")
    first = runtime.invoke(config, "{}").json
    second = runtime.invoke(config, "{}").json
    assert first["pid"] == second["pid"]
    assert second["cold_starts"] == 1
    assert first["request_id"] != second["request_id"]


def test_handler_exception_comes_back_in_the_aws_shape(runtime, make_config):
    result = runtime.invoke(make_config("fn-boom", "boom"), '{"x": 1}')
    assert result.function_error == "Unhandled"
    body = result.json
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == 'bad input: {"x": 1}'
    assert isinstance(body["stackTrace"], list) and "line" in body["stackTrace"][0]
    assert "app.py" in body["stackTrace"][0]  # runtime frames are left out, as in Lambda
    assert body["requestId"] == result.request_id


def test_an_answer_over_6_mb_is_refused_as_lambda_refuses_it(runtime, make_config):
    config = make_config("fn-big", "echo")
    result = runtime.invoke(config, json.dumps({"pad": "x" * (6 * 1024 * 1024)}))
    assert result.function_error == "Unhandled"
    assert result.json["errorType"] == "Function.ResponseSizeTooLarge"
    assert runtime.invoke(config, "{}").function_error is None  # the worker goes on


def test_timeout_kills_only_that_worker(runtime, make_config):
    other = runtime.invoke(make_config("fn-other", "echo"), "{}").json
    slow = make_config("fn-slow", "sleep", timeout=1)
    result = runtime.invoke(slow, '{"seconds": 30}')  # a 30 s sleep that returned would carry no error
    assert result.function_error == "Unhandled"
    assert result.json["errorType"] == "Sandbox.Timedout"
    assert result.json["errorMessage"] == f"{result.request_id} Task timed out after 1.00 seconds"
    assert runtime.workers("fn-slow") == 0
    assert runtime.invoke(make_config("fn-other", "echo"), "{}").json["pid"] == other["pid"]
    assert runtime.invoke(slow, '{"seconds": 0}').json["slept"] == 0  # a fresh worker serves the next call


def test_crashed_worker_is_replaced(runtime, make_config):
    crash = runtime.invoke(make_config("fn-crash", "crash"), "{}")
    assert crash.function_error == "Unhandled"
    assert crash.json["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in crash.json["errorMessage"]
    assert runtime.workers("fn-crash") == 0
    echo = make_config("fn-crash", "echo")  # same function, new configuration
    assert runtime.invoke(echo, "{}").function_error is None


def test_unknown_handler_is_an_init_error(runtime, make_config):
    result = runtime.invoke(make_config("fn-missing", "nope"), "{}")
    assert result.function_error == "Unhandled"
    assert result.json["errorType"] == "Runtime.HandlerNotFound"
    module = runtime.invoke(
        FunctionConfig(
            name="fn-mod", arn="arn", handler="nomodule.handler", code_zip=make_config("x", "echo").code_zip
        ),
        "{}",
    )
    assert module.json["errorType"] == "Runtime.ImportModuleError"


def test_pool_grows_only_when_all_workers_are_busy(runtime, make_config, tmp_path):
    config = make_config("fn-par", "meet", timeout=30)
    runtime.invoke(config, json.dumps({"dir": str(tmp_path / "warm"), "parties": 1}))  # cold start out of the way
    assert runtime.workers("fn-par") == 1
    results: list[dict] = []
    # Three calls that each wait for the other two: they all meet only if they ran side by side,
    # however long the workers take to start.
    event = json.dumps({"dir": str(tmp_path / "barrier"), "parties": 3})
    threads = [threading.Thread(target=lambda: results.append(runtime.invoke(config, event).json)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["met"] for r in results] == [True, True, True]
    assert len({r["pid"] for r in results}) == 3
    assert runtime.workers("fn-par") == 3


def test_handler_output_goes_to_the_log_not_the_payload(runtime, make_config, caplog):
    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "local.lambda.fn-chatty"]

    with caplog.at_level("INFO", logger="local.lambda"):
        result = runtime.invoke(make_config("fn-chatty", "chatty"), "{}")
        deadline = time.monotonic() + 10  # the worker's output is relayed by a reader thread
        while not (any("a warning" in line for line in lines()) and any("hello" in line for line in lines())):
            assert time.monotonic() < deadline, lines()
            time.sleep(0.02)
    assert json.loads(result.payload) == "ok"
    assert any("[fn-chatty] hello from the handler" in line for line in lines())
    assert any("a warning" in line and result.request_id in line for line in lines())


def test_close_stops_every_worker(make_config):
    rt = LambdaRuntime(ENDPOINT)
    pid = rt.invoke(make_config("fn-close", "echo"), "{}").json["pid"]
    rt.close()
    import os

    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.05)
