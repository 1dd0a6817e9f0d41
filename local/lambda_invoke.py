"""Lambda Invoke: every invocation moto handles goes to the local worker runtime, not to Docker.

`moto.awslambda.models.LambdaFunction.invoke` is the one method every Lambda invocation path goes
through in moto 5.2.5 (the Invoke API, the Step Functions engine via that API, SQS / SNS / S3 event
sources, EventBridge targets through `local.moto_glue.events`), so it is replaced with a call to a
dispatcher of ours (`local.lambda_runtime.LambdaRuntime.invoke`), because moto would run the code in
Docker. The replacement also fixes two differences from AWS: a failed invocation says
``X-Amz-Function-Error: Unhandled`` (moto says ``Handled``), and an ``Event`` (async) invocation
returns 202 at once and runs in the background (moto runs it before answering).

Lambda's "use_docker" stays at its default (True) on purpose: with it off, moto swaps in
`LambdaSimpleBackend.invoke`, which never reaches `LambdaFunction.invoke`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from local import durable_service
from local.lambda_runtime import FunctionConfig, InvocationResult
from local.moto_glue.swap import MethodSwap

log = logging.getLogger("local.moto")


Dispatcher = Callable[[FunctionConfig, str], InvocationResult]

_dispatcher: Dispatcher | None = None


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
        role=str(fn.role or ""),
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
        raise RuntimeError("no Lambda dispatcher installed (local.lambda_invoke.install_lambda_dispatcher)")
    config = function_config(fn)
    event = body if body else "{}"
    durable_name = _header(request_headers, durable_service.NAME_HEADER, "")
    if durable_name and not _header(request_headers, durable_service.HANDLER_INVOKE_HEADER, ""):
        return _start_durable_execution(config, durable_name, event, response_headers)
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


def _start_durable_execution(config: FunctionConfig, name: str, event: str, response_headers: Any) -> bytes:
    """An Invoke with a durable execution name starts (or finds) that execution (local.durable_service)."""
    service = durable_service.current()
    if service is None:
        response_headers["x-amz-function-error"] = "Unhandled"
        return durable_service.invoke_error("no durable execution service runs in this embedded AWS")
    arn = service.start(config.arn, config.name, config.version, name, event)
    response_headers[durable_service.ARN_HEADER] = arn
    response_headers["x-amz-executed-version"] = config.version
    return b""


def invoke_function(fn: Any, event: str) -> InvocationResult:
    """Invoke a `moto.awslambda.models.LambdaFunction` synchronously through the installed dispatcher
    (how the event-source pollers call a function, as Lambda's pollers do, without an HTTP request)."""
    dispatcher = _dispatcher
    if dispatcher is None:
        raise RuntimeError("no Lambda dispatcher installed (local.lambda_invoke.install_lambda_dispatcher)")
    return dispatcher(function_config(fn), event)


def _lambda_function() -> type:
    from moto.awslambda.models import LambdaFunction

    return LambdaFunction


_swap = MethodSwap(_lambda_function, "invoke", _invoke)


def install_lambda_dispatcher(dispatcher: Dispatcher) -> None:
    """Route every Lambda invocation moto handles in this process to `dispatcher(config, event_json)`."""
    global _dispatcher
    _dispatcher = dispatcher
    _swap.install()


def uninstall_lambda_dispatcher() -> None:
    """Put moto's own `LambdaFunction.invoke` back."""
    global _dispatcher
    _dispatcher = None
    _swap.uninstall()
