"""Lambda execution environment for one function, run as a subprocess by `local.lambda_runtime`.

Run by path (``python -I lambda_bootstrap.py <request_fd> <response_fd>``) with cwd = the
function's extracted code and an environment that holds only the function's variables plus
the Lambda runtime ones. It imports the configured handler once (the cold start), then serves
invocations over a private pipe pair, one JSON document per line, so the handler's own
stdout/stderr stay free for logs, exactly as in Lambda where they go to CloudWatch.

This file must not import anything from the project: it runs with only the code directory and
the interpreter's site-packages (which stand in for the dependency layer) on ``sys.path``.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The context object the Python runtime passes to handlers (same attribute names and types)."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = None
        self.identity = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


_request_filter = _RequestIdFilter()


def _setup_logging() -> None:
    """Give the root logger the handler the Python runtime installs (text format)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.addFilter(_request_filter)
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        root.setLevel(level.upper())


def _error(exc: BaseException, request_id: str | None = None, error_type: str | None = None) -> dict:
    body: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        # like the runtime, the stack trace starts at the first frame of the function's own code
        "stackTrace": traceback.format_list(
            [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != os.path.abspath(__file__)]
        ),
    }
    if request_id:
        body["requestId"] = request_id
    return body


def _load_handler(spec: str) -> tuple[Any, dict | None]:
    """Import ``module.function`` like the runtime does, returning (handler, init_error)."""
    module_name, _, func_name = spec.rpartition(".")
    if not module_name:
        return None, {
            "errorMessage": f"Bad handler '{spec}': not enough values to unpack",
            "errorType": "Runtime.MalformedHandlerName",
            "stackTrace": [],
        }
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        return None, {
            "errorMessage": f"Unable to import module '{module_name}': {exc}",
            "errorType": "Runtime.ImportModuleError",
            "stackTrace": [],
        }
    except Exception as exc:
        return None, _error(exc, error_type="Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError) else None)
    handler = getattr(module, func_name, None)
    if handler is None:
        return None, {
            "errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
            "errorType": "Runtime.HandlerNotFound",
            "stackTrace": [],
        }
    return handler, None


def _to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, decimal.Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    return json.dumps(value, default=default)


def main() -> None:
    req_fd, resp_fd = int(sys.argv[1]), int(sys.argv[2])
    requests = os.fdopen(req_fd, "r", encoding="utf-8")
    responses = os.fdopen(resp_fd, "w", encoding="utf-8")

    def send(message: dict) -> None:
        responses.write(json.dumps(message) + "\n")
        responses.flush()

    code_dir = os.getcwd()
    sys.path.insert(0, code_dir)
    _setup_logging()
    handler, init_error = _load_handler(os.environ["_HANDLER"])
    send({"init": "ok" if init_error is None else "error", "error": init_error})
    if init_error is not None:
        return

    for line in requests:
        request = json.loads(line)
        request_id = request["requestId"]
        _request_filter.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = request.get("traceId", "")
        context = LambdaContext(request_id, request["deadlineMs"], request["invokedFunctionArn"])
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        try:
            result = handler(json.loads(request["event"]), context)
            try:
                message = {"ok": True, "payload": _to_json(result)}
            except (TypeError, ValueError) as exc:
                message = {
                    "ok": False,
                    "error": {
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "errorType": "Runtime.MarshalError",
                        "requestId": request_id,
                        "stackTrace": [],
                    },
                }
        except Exception as exc:
            message = {"ok": False, "error": _error(exc, request_id)}
            print(
                f"[ERROR] {message['error']['errorType']}: {message['error']['errorMessage']}\n"
                + "".join(message["error"]["stackTrace"]),
                file=sys.stderr,
                flush=True,
            )
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"END RequestId: {request_id}", flush=True)
        send(message)


if __name__ == "__main__":
    main()
