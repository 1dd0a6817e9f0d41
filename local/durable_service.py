"""Lambda durable functions, locally: the durable execution SDK's own testing server, fronted by moto.

The service that checkpoints durable executions, schedules their waits and callbacks and invokes
the function again is emulated by the SDK's testing server (`aws-durable-execution-sdk-python-
testing`, its `WebRunner`, the same object its `start-server` command runs), here in this process
on loopback. It invokes the function with the Lambda Invoke API of the embedded AWS, so a durable
function runs in the same warm workers as every other function, from the same zip.

Code sees one endpoint, as in AWS: everything goes to the embedded AWS's URL and this module
adds what moto 5.2.5's Lambda lacks (nothing here changes the testing server's behaviour):
- the durable execution APIs (`/2025-12-01/durable-executions/...`, `/2025-12-01/durable-execution-
  callbacks/...`: checkpoint, state, stop, callbacks) are passed to the testing server as they came;
- an `Invoke` with `X-Amz-Durable-Execution-Name` starts an execution (the testing server only has
  its own `POST /start-durable-execution`), at most one per name, answering its ARN in
  `X-Amz-Durable-Execution-Arn` as Lambda does;
- executions get ARNs of Lambda's shape (`...:function:<name>:<version>/durable-execution/<name>/<id>`),
  where the testing server makes two UUIDs: callers tell the engine of a task by that shape.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests

from local.moto_glue.swap import MethodSwap

log = logging.getLogger("local.durable")

API_PREFIXES = ("/2025-12-01/durable-executions", "/2025-12-01/durable-execution-callbacks")
NAME_HEADER = "x-amz-durable-execution-name"
ARN_HEADER = "X-Amz-Durable-Execution-Arn"
# The testing server marks the invocations it makes to run a handler (invoker.INVOCATION_MARKER_HEADER).
HANDLER_INVOKE_HEADER = "x-dex-handler-invoke"
# How long one durable execution may run locally, and how long its state is kept (as durable_config).
EXECUTION_TIMEOUT_SECONDS = 24 * 3600
RETENTION_DAYS = 1
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


@dataclass(frozen=True)
class StartedExecution:
    arn: str
    payload: str


class DurableService:
    """The testing server on a free loopback port, invoking functions at `lambda_endpoint`."""

    def __init__(self, lambda_endpoint: str, region: str) -> None:
        from aws_durable_execution_sdk_python_testing.runner import WebRunner, WebRunnerConfig
        from aws_durable_execution_sdk_python_testing.web.server import WebServiceConfig

        self.region = region
        config = WebRunnerConfig(
            web_service=WebServiceConfig(host="127.0.0.1", port=0, log_level=logging.WARNING),
            lambda_endpoint=lambda_endpoint,
            local_runner_endpoint=lambda_endpoint,
            local_runner_region=region,
        )
        self._runner = WebRunner(config)
        self._runner.start()
        server = self._runner._server  # the WebRunner's ThreadingHTTPServer: bound to port 0 above
        assert server is not None
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=self._runner.serve_forever, name="durable-service", daemon=True)
        self._thread.start()
        self._http = requests.Session()
        self._lock = threading.Lock()
        self._by_name: dict[tuple[str, str], StartedExecution] = {}
        log.info("durable execution service (the SDK's testing server) on %s", self.url)

    def close(self) -> None:
        self._server.shutdown()
        self._runner.stop()
        self._thread.join(timeout=5)

    # -- the Invoke that starts an execution --------------------------------------------------------

    def start(self, function_arn: str, function_name: str, version: str, name: str, payload: str) -> str:
        """Start execution `name` of the function's `version` with `payload`; its ARN. A name that
        started an execution of this function already answers that one (Lambda's idempotent start)."""
        with self._lock:
            started = self._by_name.get((function_arn, name))
            if started is None:
                body = {
                    "AccountId": function_arn.split(":")[4],
                    "FunctionName": function_name,
                    "FunctionQualifier": version,
                    "ExecutionName": name,
                    "ExecutionTimeoutSeconds": EXECUTION_TIMEOUT_SECONDS,
                    "ExecutionRetentionPeriodDays": RETENTION_DAYS,
                    "Input": payload,
                }
                response = self._http.post(f"{self.url}/start-durable-execution", json=body, timeout=30)
                response.raise_for_status()
                started = StartedExecution(response.json()["ExecutionArn"], payload)
                self._by_name[(function_arn, name)] = started
        if started.payload != payload:
            log.warning("durable execution %s was started with another payload; answering it", name)
        return started.arn

    # -- the durable execution APIs -----------------------------------------------------------------

    def forward(self, method: str, raw_uri: str, headers: Iterable[tuple[str, str]], body: bytes) -> requests.Response:
        """Send one durable execution API request to the testing server as it came (path still encoded)."""
        kept = {k: v for k, v in headers if k.lower() not in _HOP_HEADERS}
        return self._http.request(method, f"{self.url}{raw_uri}", headers=kept, data=body, timeout=60)


# -- the ARN Lambda gives an execution ------------------------------------------------------------------


def _execution_class() -> type:
    from aws_durable_execution_sdk_python_testing.execution import Execution

    return Execution


def _lambda_shaped_new(input: Any) -> Any:
    """`Execution.new` with the ARN Lambda gives: the function's ARN, its version, the name, an id."""
    execution = _new.original(input)
    qualifier = input.function_qualifier or "$LATEST"
    execution_id = input.invocation_id or str(uuid.uuid4())
    execution.durable_execution_arn = (
        f"arn:aws:lambda:{_service_region()}:{input.account_id}:function:{input.function_name}:{qualifier}"
        f"/durable-execution/{input.execution_name}/{execution_id}"
    )
    return execution


class _StaticSwap(MethodSwap):
    """A swap of a staticmethod that keeps the original callable at hand."""

    @property
    def original(self) -> Any:
        return self._original


_new = _StaticSwap(_execution_class, "new", staticmethod(_lambda_shaped_new))

# -- the process-wide service ---------------------------------------------------------------------------

_service: DurableService | None = None


def _service_region() -> str:
    return _service.region if _service is not None else "us-east-1"


def current() -> DurableService | None:
    """The running service, if an embedded AWS started one."""
    return _service


def start(lambda_endpoint: str, region: str) -> DurableService:
    """Start the service for the embedded AWS at `lambda_endpoint` (one per process)."""
    global _service
    _new.install()
    _service = DurableService(lambda_endpoint, region)
    return _service


def stop() -> None:
    global _service
    service, _service = _service, None
    if service is not None:
        service.close()


def invoke_error(message: str) -> bytes:
    return json.dumps({"errorType": "ResourceNotFoundException", "errorMessage": message}).encode()
