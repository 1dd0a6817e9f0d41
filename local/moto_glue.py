"""The only module that knows moto's internals (moto 5.2.5, pinned in requirements-dev.txt).

What it does, and why:
- starts a `ThreadedMotoServer` on loopback (port 0 = a free port) in this process, with HTTP
  keep-alive (werkzeug closes every connection);
- sets ``MOTO_PORT`` to that port: moto's Step Functions engine builds its own boto3 clients for
  ``http://localhost:$MOTO_PORT`` (default 5000), so without it ``lambda:invoke`` tasks go nowhere;
- turns on the engine with ``POST /moto-api/config`` ``{"stepfunctions": {"execute_state_machine": true}}``;
- replaces ``moto.awslambda.models.LambdaFunction.invoke``, the one method every Lambda invocation
  path goes through (the Invoke API, the Step Functions engine via that API, DynamoDB stream /
  SQS / SNS / S3 event sources), with a call to a dispatcher of ours, because moto would run the
  code in Docker. The replacement also fixes two differences from AWS: a failed invocation says
  ``X-Amz-Function-Error: Unhandled`` (moto says ``Handled``), and an ``Event`` (async)
  invocation returns 202 at once and runs in the background (moto runs it before answering);
- serializes DynamoDB (and Streams) requests under one lock and replaces `transact_write_items`
  with one that checks every condition before writing anything, instead of deep-copying each
  table and restoring the copy on failure (which undid other threads' commits and made every
  write cost a copy of the table);
- caches two things moto recomputes on every request: the list of its own backends (read from
  disk under a global lock) and the parsed ASL of a state machine (parsed at every execution),
  and builds each service's request router under a lock;
- makes a StopExecution win over the error of the state it cut short, and Wait states notice it.

Lambda's "use_docker" stays at its default (True) on purpose: with it off, moto swaps in
`LambdaSimpleBackend.invoke`, which never reaches `LambdaFunction.invoke`.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import threading
import time
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
    for key, value in fake_aws_environment(region).items():
        os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call is noise
    server = _keep_alive_server_class()(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _host, bound_port = server.get_host_and_port()
    os.environ["MOTO_PORT"] = str(bound_port)  # read by moto.settings.moto_server_port() at call time
    moto = MotoServer(server, "127.0.0.1", bound_port)
    response = requests.post(
        f"{moto.url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
    )
    response.raise_for_status()
    _name_heartbeat_timeouts()
    _publish_execution_status_changes()
    _serialize_dynamodb()
    _transactions_without_table_copies()
    _list_moto_modules_once()
    _parse_each_definition_once()
    _routers_built_once()
    _a_stop_wins()
    log.debug("moto %s serving on %s (Step Functions engine on)", MOTO_VERSION, moto.url)
    return moto


def _keep_alive_server_class() -> type:
    """`ThreadedMotoServer` whose connections stay open between requests.

    Werkzeug's server answers every request with `Connection: close`, because http.server cannot
    skip a request body the application left unread. So each AWS call of every Lambda worker (and
    of the Step Functions engine) paid a new TCP connection and a new server thread: a fifth of a
    worker's time per DynamoDB write. Here each request's body is read to its end after the
    answer (a chunked body, which cannot be, still closes the connection), and the connection is
    kept, as a real AWS endpoint keeps it.
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server
    from werkzeug.wsgi import LimitedStream

    class KeepAliveRequestHandler(MotoRequestHandler):
        disable_nagle_algorithm = True  # head and body are separate writes; no 40 ms delayed-ACK stall
        _body: LimitedStream | None = None

        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
                self._body = None
            else:
                # The application reads the body through a stream that stops at its end; werkzeug's
                # own drain after the answer (which would read the next request) sees an empty rfile.
                self._body = LimitedStream(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = self._body
                self.rfile = io.BytesIO()
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "connection" and value.lower() == "close" and self._body is not None:
                return  # the body is drained in run_wsgi: the next request line is where it belongs
            super().send_header(keyword, value)

        def run_wsgi(self) -> None:
            connection_rfile, self._body = self.rfile, None
            try:
                super().run_wsgi()
            finally:
                self.rfile = connection_rfile
            body, self._body = self._body, None
            if body is None:
                self.close_connection = True
                return
            try:
                body.exhaust()
            except OSError:
                self.close_connection = True

    class KeepAliveMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=KeepAliveRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return KeepAliveMotoServer


def _name_heartbeat_timeouts() -> None:
    """A missed heartbeat is `States.HeartbeatTimeout` in AWS; moto 5.2.5's engine reports every
    timeout of a callback task as `States.Timeout` (its HeartbeatTimeoutError subclasses TimeoutError,
    which `StateTask._from_error` maps to the timeout event). Name it as AWS does. Idempotent."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = StateTaskServiceCallback._from_error
    if getattr(original, "_aiwf_heartbeat", False):
        return

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, HeartbeatTimeoutError):
            name = StatesErrorNameType.StatesHeartbeatTimeout
            return FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=name),
                event_type=HistoryEventType.TaskTimedOut,
                event_details=EventDetails(taskTimedOutEventDetails=TaskTimedOutEventDetails(error=name.to_name())),
            )
        return original(self, env, ex)

    _from_error._aiwf_heartbeat = True  # type: ignore[attr-defined]
    StateTaskServiceCallback._from_error = _from_error  # type: ignore[method-assign]


def _publish_execution_status_changes() -> None:
    """Deliver "Step Functions Execution Status Change" events as AWS does, to the rules that match.

    moto's engine emits no such events, and moto's EventBridge delivers to no Lambda target. When an
    execution ends, this puts the event on the default bus (moto matches the rules' patterns) and
    hands each matching Lambda target the event as an asynchronous invocation. Idempotent.
    """
    from moto.awslambda.models import lambda_backends
    from moto.events.models import Rule, events_backends
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    if getattr(BaseExecutionWorkerCommunication.terminated, "_aiwf_events", False):
        return
    original_terminated = BaseExecutionWorkerCommunication.terminated
    original_send = Rule.send_to_targets

    def terminated(self: Any) -> None:
        original_terminated(self)
        execution = self.execution
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": execution.exec_status.value,
            "startDate": int(execution.start_date.timestamp() * 1000),
            "stopDate": int(execution.stop_date.timestamp() * 1000) if execution.stop_date else None,
            "input": json.dumps(execution.input_data),
            "output": None if execution.output is None else json.dumps(execution.output),
            "error": execution.error,
            "cause": execution.cause,
        }
        entry = {
            "Source": "aws.states",
            "DetailType": "Step Functions Execution Status Change",
            "Detail": json.dumps(detail),
            "Resources": [execution.exec_arn],
        }
        try:
            events_backends[execution.account_id][execution.region_name].put_events([entry])
        except Exception:  # an event that cannot be delivered never changes the execution's outcome
            log.exception("execution status event for %s not delivered", execution.exec_arn)

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        functions = [target for target in self.targets if ":lambda:" in target["Arn"]]
        if len(functions) < len(self.targets):  # moto's own targets (logs, SQS, buses...) as before
            every_target, self.targets = self.targets, [t for t in self.targets if t not in functions]
            try:
                original_send(self, original_event, transform_input)
            finally:
                self.targets = every_target
        if not functions or not self.event_pattern.matches_event(original_event):
            return
        backend = lambda_backends[self.account_id][self.region_name]
        for target in functions:
            function = backend.get_function(target["Arn"])
            function.invoke(json.dumps(original_event, default=str), {"X-Amz-Invocation-Type": "Event"}, {})

    terminated._aiwf_events = True  # type: ignore[attr-defined]
    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


# -- DynamoDB under concurrency ---------------------------------------------------------------------
#
# moto's server answers each request on its own thread, and its DynamoDB backend has no lock: a
# Query iterating a table while another thread inserts fails with "dictionary changed size during
# iteration" (a 500), and `transact_write_items` deep-copies every table it touches and restores
# the copy when any condition fails, so a failed transaction undoes writes other threads committed
# meanwhile, and every write costs a copy of the whole table. DynamoDB itself is linearizable per
# item and its transactions are all-or-nothing without touching anything else.

_dynamodb_lock = threading.RLock()


def dynamodb_lock() -> threading.RLock:
    """The lock every DynamoDB and DynamoDB Streams request of the embedded AWS runs under."""
    return _dynamodb_lock


def _serialize_dynamodb() -> None:
    """One request at a time against moto's DynamoDB tables (and their streams). Idempotent."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action
        if getattr(original, "_aiwf_locked", False):
            continue

        def call_action(self: Any, _original: Any = original) -> Any:
            with _dynamodb_lock:
                return _original(self)

        call_action._aiwf_locked = True  # type: ignore[attr-defined]
        handler.call_action = call_action  # type: ignore[method-assign]


def _transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """All-or-nothing without table copies: check every condition first, then apply every write.

    Runs under the DynamoDB lock (it is called from a request), so nothing changes between the
    checks and the writes. Raises what moto's own raises (TransactionCanceledException with one
    reason per item, in order), so clients get DynamoDB's answers. A write that still fails while
    being applied (a validation moto makes only then) puts back the items already written.
    """
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen: set[tuple[str, str]] = set()
    writes: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
    reasons: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        old_image: dict[str, Any] | None = None
        try:
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = backend.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            identity = (str(table_name), str(dict(sorted(key.items()))))
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
            current = backend.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old_image = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=old_image)
            writes.append((op_type, op, table_name, key, current))
            reasons.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as exc:
            reasons.append(("ConditionalCheckFailed", str(exc.message), old_image))
        except Exception as exc:  # moto's own transaction reports any other failure per item too
            reasons.append((type(exc).__name__, str(exc), old_image))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    applied: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, table_name, key, current in writes:
            if op_type == "Put":
                backend.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                backend.delete_item(table_name, key)
            elif op_type == "Update":
                backend.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )
            else:
                continue
            applied.append((table_name, key, current))
    except Exception:
        for table_name, key, previous in reversed(applied):
            _put_back(backend, table_name, key, previous)
        raise


def _put_back(backend: Any, table_name: str, key: dict[str, Any], previous: Any) -> None:
    """Restore one item as it was (None: absent), in place, without a stream record."""
    table = backend.get_table(table_name)
    hash_value, range_value = backend.get_keys_value(table, key)
    if range_value is not None:
        bucket = table.items[hash_value]
        if previous is None:
            bucket.pop(range_value, None)
        else:
            bucket[range_value] = previous
    elif previous is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = previous


def _transactions_without_table_copies() -> None:
    """Replace `DynamoDBBackend.transact_write_items` (see above). Idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.transact_write_items, "_aiwf_copy_free", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _transact_write_items(self, transact_items)

    transact_write_items._aiwf_copy_free = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# -- per-request costs that do not change -----------------------------------------------------------


def _list_moto_modules_once() -> None:
    """moto's server finds the backend of every request by listing its own package folder on disk
    (~200 `isdir` calls) while holding the dispatcher's one lock; the list never changes. Idempotent."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_aiwf_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    list_of_moto_modules._aiwf_cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]


ASL_PARSE_CACHE_SIZE = 64


def _parse_each_definition_once() -> None:
    """moto's engine parses the state machine's ASL with a pure-Python ANTLR parser at every
    execution start (a third of the embedded AWS's CPU when many tasks start). The parsed program
    keeps per-execution state in the execution's Environment, not in its components, so one parse
    per definition serves every execution of it. Idempotent."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.__dict__["parse"].__func__
    if getattr(original, "_aiwf_cached", False):
        return
    cached = functools.lru_cache(maxsize=ASL_PARSE_CACHE_SIZE)(original)
    cached._aiwf_cached = True  # type: ignore[attr-defined]
    AmazonStateLanguageParser.parse = staticmethod(cached)  # type: ignore[method-assign,assignment]


def _routers_built_once() -> None:
    """moto builds a service's request router on first use, with no lock: concurrent first requests
    race on the half-built router (a werkzeug traceback under load). One at a time. Idempotent."""
    from moto.core.routing import ServiceOperationRouter

    original = ServiceOperationRouter._get_router
    if getattr(original, "_aiwf_locked", False):
        return
    lock = threading.Lock()

    def _get_router(self: Any, protocol: str) -> Any:
        routers = self._routers
        if protocol in routers:
            return routers[protocol]
        with lock:
            return original(self, protocol)

    _get_router._aiwf_locked = True  # type: ignore[attr-defined]
    ServiceOperationRouter._get_router = _get_router  # type: ignore[method-assign]


WAIT_SLICE_SECONDS = 1.0


def _a_stop_wins() -> None:
    """StopExecution as AWS applies it, whenever it lands. Idempotent.

    moto 5.2.5 only flags the stop; the engine thread goes on with the state it is in. A Choice cut
    short pops from an empty stack and the error it raises then overwrites the stop (the execution
    ends FAILED with States.Runtime instead of ABORTED): here an error after a stop is ignored. And
    `set_stop` wakes waiters with `Event.set(); Event.clear()`: a Wait that starts waiting right
    after misses it and sleeps its whole length; here waits check the program state every second.
    """
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    if getattr(Environment.set_error, "_aiwf_stop_wins", False):
        return
    original_set_error = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        with self._state_mutex:
            if isinstance(self._program_state, ProgramStopped):
                return
            original_set_error(self, error)

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        deadline = time.monotonic() + wait_seconds
        while env.is_running():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            env.program_state_event.wait(min(left, WAIT_SLICE_SECONDS))

    set_error._aiwf_stop_wins = True  # type: ignore[attr-defined]
    Environment.set_error = set_error  # type: ignore[method-assign]
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]


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


# -- DynamoDB streams -> Lambda, asynchronously -------------------------------------------------------
#
# moto's `StreamShard.add` invokes every mapped function synchronously inside the write, resends
# the whole backlog until an invocation "succeeds", and ignores batch item failures, retries,
# bisection and on-failure destinations. In AWS the write returns at once and Lambda's poller
# delivers the shard in order, retrying. The replacement records the change exactly as moto does
# (GetRecords still works) and queues it for a delivery thread per event source mapping.

STREAM_BACKOFF_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0)
DEFAULT_STREAM_RETRIES = 10  # AWS's default is -1 (until the record expires); bounded locally
_original_stream_add: Any = None
_stream_lock = threading.Lock()
_deliveries: dict[str, StreamDelivery] = {}
_stream_endpoint: str | None = None
# Called with (table name, the Lambda-shaped record) at the instant a change is committed; for
# measurements (bench/fanout.py) that start the clock at the commit, not at the client's request.
commit_observers: list[Callable[[str, dict[str, Any]], None]] = []


def _lambda_record(record: Any, region: str, source_arn: str) -> dict[str, Any]:
    """A stream record in the shape Lambda's event carries (as moto's `send_dynamodb_items` builds it)."""
    from datetime import datetime

    from moto.core.utils import unix_time

    body = record.to_json()
    dynamodb = dict(body["dynamodb"])
    if isinstance(dynamodb.get("ApproximateCreationDateTime"), datetime):
        dynamodb["ApproximateCreationDateTime"] = unix_time(dynamodb["ApproximateCreationDateTime"])
    return {
        "eventID": body["eventID"],
        "eventName": body["eventName"],
        "eventVersion": body["eventVersion"],
        "eventSource": body["eventSource"],
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": source_arn,
    }


class StreamDelivery:
    """One event source mapping's poller: batches in shard order, retried, bisected, then dead-lettered."""

    def __init__(self, mapping: Any) -> None:
        self.mapping = mapping
        self._records: list[dict[str, Any]] = []
        self._wake = threading.Condition()
        self._stopped = False
        self._busy = False
        self.delivered = 0
        self.failed_batches: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, name=f"stream-{mapping.uuid[:8]}", daemon=True)
        self._thread.start()

    def enqueue(self, record: dict[str, Any]) -> None:
        with self._wake:
            self._records.append(record)
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def idle(self) -> bool:
        with self._wake:
            return not self._records and not self._busy

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._records and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                size = int(self.mapping.batch_size or 100)
                batch, self._records = self._records[:size], self._records[size:]
                self._busy = True
            try:
                self._deliver(batch)
            except Exception:  # never let one batch kill the poller
                log.exception("stream delivery to %s failed", self.mapping.function_arn)
            finally:
                with self._wake:
                    self._busy = False

    def _invoke(self, batch: list[dict[str, Any]]) -> InvocationResult:
        from moto.awslambda.utils import get_backend

        dispatcher = _dispatcher
        if dispatcher is None:
            raise RuntimeError("no Lambda dispatcher installed")
        fn = get_backend(self.mapping.account_id, self.mapping.region).get_function(self.mapping.function_arn)
        return dispatcher(function_config(fn), json.dumps({"Records": batch}))

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        retries = self.mapping.max_retry_attempts
        limit = DEFAULT_STREAM_RETRIES if retries is None or int(retries) < 0 else int(retries)
        pending, attempt = batch, 0
        while pending:
            result = self._invoke(pending)
            if result.function_error:
                log.warning(
                    "stream batch of %d failed in %s: %s", len(pending), self.mapping.function_arn, result.payload[:300]
                )
                if self.mapping.bisect_on_error and len(pending) > 1:
                    half = len(pending) // 2
                    self._deliver(pending[:half])
                    self._deliver(pending[half:])
                    return
            else:
                failed_at = self._first_failure(pending, result)
                if failed_at is None:
                    self.delivered += len(pending)
                    return
                self.delivered += failed_at
                pending = pending[failed_at:]
            attempt += 1
            if attempt > limit:
                self._on_failure(pending, attempt, result)
                return
            time.sleep(STREAM_BACKOFF_SECONDS[min(attempt - 1, len(STREAM_BACKOFF_SECONDS) - 1)])

    def _first_failure(self, batch: list[dict[str, Any]], result: InvocationResult) -> int | None:
        """Index of the record to resume from, per the function's `batchItemFailures`; None = all done."""
        if "ReportBatchItemFailures" not in (self.mapping.function_response_types or []):
            return None
        try:
            answer = json.loads(result.payload or b"null")
        except ValueError:
            return 0
        failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
        if not failures:
            return None
        sequence = {r["dynamodb"]["SequenceNumber"]: index for index, r in enumerate(batch)}
        indexes = [sequence.get(str((f or {}).get("itemIdentifier"))) for f in failures]
        return 0 if None in indexes else min(indexes)  # type: ignore[type-var]  # unknown id: whole batch

    def _on_failure(self, batch: list[dict[str, Any]], attempts: int, result: InvocationResult) -> None:
        """What AWS sends the on-failure destination: the batch's coordinates, not the records."""
        first, last = batch[0], batch[-1]
        info = {
            "requestContext": {
                "requestId": result.request_id,
                "functionArn": self.mapping.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": result.function_error or "",
            },
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "DDBStreamBatchInfo": {
                "shardId": "shardId-00000001541626099285-f35f62ef",
                "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": first["dynamodb"].get("ApproximateCreationDateTime"),
                "approximateArrivalOfLastRecord": last["dynamodb"].get("ApproximateCreationDateTime"),
                "batchSize": len(batch),
                "streamArn": self.mapping.event_source_arn,
            },
        }
        self.failed_batches.append(info)
        destination = ((self.mapping.destination_config or {}).get("OnFailure") or {}).get("Destination")
        log.warning("stream batch dead-lettered after %d attempts (destination %s)", attempts, destination)
        if destination and destination.startswith("arn:aws:sqs:") and _stream_endpoint:
            import boto3

            region, _account, name = destination.split(":")[3:6]
            sqs = boto3.client("sqs", endpoint_url=_stream_endpoint, region_name=region)
            sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"], MessageBody=json.dumps(info))


def _stream_add(shard: Any, old: Any, new: Any) -> None:
    """Replacement for `StreamShard.add(old, new)`: record the change, queue it for each mapping."""
    from moto.dynamodb.models.table import StreamRecord

    view_type = shard.table.stream_specification["StreamViewType"]
    event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    with _stream_lock:
        sequence = len(shard.items) + shard.starting_sequence_number
        record = StreamRecord(shard.table, view_type, event_name, old, new, sequence)
        shard.items.append(record)
        if commit_observers:
            committed = _lambda_record(record, shard.table.region_name, "")
            for observer in list(commit_observers):
                observer(shard.table.name, committed)
        for mapping in list(shard.table.lambda_event_source_mappings.values()):
            if not mapping.enabled:
                continue
            delivery = _deliveries.get(mapping.uuid)
            if delivery is None:
                delivery = _deliveries[mapping.uuid] = StreamDelivery(mapping)
            delivery.enqueue(_lambda_record(record, shard.table.region_name, mapping.event_source_arn))


def install_stream_delivery(endpoint_url: str) -> None:
    """Deliver DynamoDB stream records to mapped functions asynchronously (see above)."""
    global _original_stream_add, _stream_endpoint
    from moto.dynamodb.models.table import StreamShard

    with _patch_lock:
        _stream_endpoint = endpoint_url
        if _original_stream_add is None:
            _original_stream_add = StreamShard.add
            StreamShard.add = _stream_add  # type: ignore[method-assign]


def uninstall_stream_delivery() -> None:
    """Stop the pollers and put moto's own `StreamShard.add` back."""
    global _original_stream_add, _stream_endpoint
    from moto.dynamodb.models.table import StreamShard

    with _patch_lock:
        if _original_stream_add is not None:
            StreamShard.add = _original_stream_add  # type: ignore[method-assign]
            _original_stream_add = None
        _stream_endpoint = None
    with _stream_lock:
        deliveries = list(_deliveries.values())
        _deliveries.clear()
    for delivery in deliveries:
        delivery.stop()


def stream_deliveries() -> dict[str, StreamDelivery]:
    """The running pollers by mapping UUID (for tests and diagnostics)."""
    with _stream_lock:
        return dict(_deliveries)
