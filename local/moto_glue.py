"""The only module that knows moto's internals (moto 5.2.5, pinned in requirements-dev.txt).

What it does, and why:
- starts a `ThreadedMotoServer` on loopback (port 0 = a free port) in this process;
- sets ``MOTO_PORT`` to that port: moto's Step Functions engine builds its own boto3 clients for
  ``http://localhost:$MOTO_PORT`` (default 5000), so without it ``lambda:invoke`` tasks go nowhere;
- turns on the engine with ``POST /moto-api/config`` ``{"stepfunctions": {"execute_state_machine": true}}``;
- replaces ``moto.awslambda.models.LambdaFunction.invoke``, the one method every Lambda invocation
  path goes through (the Invoke API, the Step Functions engine via that API, DynamoDB stream /
  SQS / SNS / S3 event sources), with a call to a dispatcher of ours, because moto would run the
  code in Docker. The replacement also fixes two differences from AWS: a failed invocation says
  ``X-Amz-Function-Error: Unhandled`` (moto says ``Handled``), and an ``Event`` (async)
  invocation returns 202 at once and runs in the background (moto runs it before answering).

Lambda's "use_docker" stays at its default (True) on purpose: with it off, moto swaps in
`LambdaSimpleBackend.invoke`, which never reaches `LambdaFunction.invoke`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from local.lambda_runtime import FAKE_CREDENTIALS, FunctionConfig, InvocationResult

log = logging.getLogger("local.moto")

MOTO_VERSION = "5.2.5"

Dispatcher = Callable[[FunctionConfig, str], InvocationResult]

_dispatcher: Dispatcher | None = None
_original_invoke: Any = None
_patch_lock = threading.Lock()


def fake_aws_environment(region: str) -> dict[str, str]:
    """Credentials and region every boto3 client of the local stack process needs (never real ones)."""
    return {**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}


@dataclass
class MotoServer:
    """A running embedded AWS: its base URL and a way to stop it."""

    server: Any
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.stop()


def start_server(port: int = 0, region: str = "us-east-1") -> MotoServer:
    """Start moto on 127.0.0.1, point the Step Functions engine at it and turn the engine on.

    Also sets fake credentials and the region in ``os.environ`` so boto3 clients made in this
    process, including the engine's, never pick up real AWS keys or profiles.
    """
    from moto.server import ThreadedMotoServer

    for key, value in fake_aws_environment(region).items():
        os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call is noise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _host, bound_port = server.get_host_and_port()
    os.environ["MOTO_PORT"] = str(bound_port)  # read by moto.settings.moto_server_port() at call time
    moto = MotoServer(server, "127.0.0.1", bound_port)
    response = requests.post(
        f"{moto.url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
    )
    response.raise_for_status()
    log.debug("moto %s serving on %s (Step Functions engine on)", MOTO_VERSION, moto.url)
    return moto


def reset(moto: MotoServer) -> None:
    """Forget every resource (moto's state is process-global, shared by all servers in a process)."""
    requests.post(f"{moto.url}/moto-api/reset", timeout=10).raise_for_status()


def function_config(fn: Any) -> FunctionConfig:
    """Read the configuration of a `moto.awslambda.models.LambdaFunction` into our neutral form."""
    return FunctionConfig(
        name=fn.function_name,
        arn=fn.function_arn,
        handler=fn.handler,
        code_zip=fn.code_bytes,
        runtime=fn.run_time or "python3.12",
        timeout=int(fn.timeout or 3),
        memory_size=int(fn.memory_size or 128),
        environment=dict(fn.environment_vars or {}),
        region=fn.region,
        version=str(fn.version),
    )


def _header(headers: Any, name: str, default: str) -> str:
    """Request headers arrive as a case-insensitive werkzeug map, or as a plain dict from event sources."""
    if not headers:
        return default
    for key, value in dict(headers).items():
        if key.lower() == name:
            return value
    return default


def _invoke(fn: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
    """Replacement for `LambdaFunction.invoke(body, request_headers, response_headers)`."""
    dispatcher = _dispatcher
    if dispatcher is None:
        raise RuntimeError("no Lambda dispatcher installed (local.moto_glue.install_lambda_dispatcher)")
    config = function_config(fn)
    event = body if body else "{}"
    invocation_type = _header(request_headers, "x-amz-invocation-type", "RequestResponse")
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":

        def run_async() -> None:
            result = dispatcher(config, event)
            if result.function_error:
                log.warning("async invocation of %s failed: %s", config.name, result.payload[:2000])

        threading.Thread(target=run_async, name=f"async-{config.name}", daemon=True).start()
        return b""
    result = dispatcher(config, event)
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    response_headers["x-amz-executed-version"] = config.version
    return result.payload


def install_lambda_dispatcher(dispatcher: Dispatcher) -> None:
    """Route every Lambda invocation moto handles in this process to `dispatcher(config, event_json)`."""
    global _dispatcher, _original_invoke
    from moto.awslambda.models import LambdaFunction

    with _patch_lock:
        _dispatcher = dispatcher
        if _original_invoke is None:
            _original_invoke = LambdaFunction.invoke
            LambdaFunction.invoke = _invoke  # type: ignore[method-assign]


def uninstall_lambda_dispatcher() -> None:
    """Put moto's own `LambdaFunction.invoke` back."""
    global _dispatcher, _original_invoke
    from moto.awslambda.models import LambdaFunction

    with _patch_lock:
        _dispatcher = None
        if _original_invoke is not None:
            LambdaFunction.invoke = _original_invoke  # type: ignore[method-assign]
            _original_invoke = None
