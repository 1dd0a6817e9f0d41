"""Warm Lambda execution environments: one pool of worker processes per function.

Each worker is a subprocess of this interpreter running `lambda_bootstrap.py` with cwd = the
function's code (extracted from the very zip the program declared), an environment built only
from the function's configuration, and ``AWS_ENDPOINT_URL`` pointing at the embedded AWS. So
environments never leak between functions, a crash or a timeout ends only that worker, and
handler code talks to the emulator exactly as it talks to AWS.

This module knows nothing about moto: it is given a `FunctionConfig` and an event, and answers
with an `InvocationResult` in the shape the Lambda Invoke API uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("local.lambda")

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lambda_bootstrap.py")
INIT_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's limit for a synchronous invocation's answer
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass(frozen=True)
class FunctionConfig:
    """What a Lambda execution environment is made from (a function's published configuration)."""

    name: str
    arn: str
    handler: str
    code_zip: bytes = field(repr=False)
    runtime: str = "python3.12"
    timeout: int = 3
    memory_size: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    version: str = "$LATEST"
    role: str = ""  # the execution role's ARN; its credentials are the worker's (see `CredentialsProvider`)

    @property
    def fingerprint(self) -> str:
        """Changes whenever code or configuration changes, so stale warm workers are not reused."""
        digest = hashlib.sha256(self.code_zip)
        digest.update(
            json.dumps(
                [
                    self.handler,
                    self.runtime,
                    self.timeout,
                    self.memory_size,
                    sorted(self.environment.items()),
                    self.version,
                ]
            ).encode()
        )
        return digest.hexdigest()[:16]


@dataclass
class InvocationResult:
    """An invocation's answer: the payload bytes and, for failures, the function-error header value."""

    payload: bytes
    function_error: str | None = None  # "Unhandled" like AWS for every runtime/handler error
    request_id: str = ""
    duration_ms: float = 0.0

    @property
    def json(self) -> object:
        return json.loads(self.payload)


def _error_payload(error_type: str, message: str, request_id: str = "") -> bytes:
    body: dict[str, object] = {"errorType": error_type, "errorMessage": message}
    if request_id:
        body["requestId"] = request_id
    return json.dumps(body).encode()


# (role ARN, function name) -> the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN of a
# worker, as Lambda sets them from the function's role; raises when the role cannot be assumed.
CredentialsProvider = Callable[[str, str], dict[str, str]]


class WorkerDied(Exception):
    """The worker process ended (crash, os._exit, kill) before answering."""


class Worker:
    """One execution environment: a subprocess that imported the handler once and serves events."""

    def __init__(
        self,
        config: FunctionConfig,
        code_dir: str,
        endpoint_url: str,
        index: int,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.label = f"{config.name}#{index}"
        env = self._environment(endpoint_url, code_dir, FAKE_CREDENTIALS if credentials is None else credentials)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-u", BOOTSTRAP, str(req_r), str(resp_w)],
                cwd=code_dir,
                env=env,
                pass_fds=(req_r, resp_w),
                close_fds=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Out of the terminal's process group: Ctrl-C on `make dev` reaches the stack, which
                # stops its workers itself, instead of every worker dying with a KeyboardInterrupt
                # traceback. A worker whose stack is gone reads the end of its request pipe and exits.
                start_new_session=True,
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        self._requests = os.fdopen(req_w, "w", encoding="utf-8")
        self._resp_fd = resp_r
        self._buffer = b""
        threading.Thread(target=self._forward_output, name=f"log-{self.label}", daemon=True).start()
        self.init_error: dict | None = None

    def _environment(self, endpoint_url: str, code_dir: str, credentials: dict[str, str]) -> dict[str, str]:
        c = self.config
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": code_dir,
            "_HANDLER": c.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{c.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": c.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(c.memory_size),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(c.timeout),
            "AWS_LAMBDA_FUNCTION_VERSION": c.version,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{c.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[{c.version}]{uuid.uuid4().hex}",
            "AWS_REGION": c.region,
            "AWS_DEFAULT_REGION": c.region,
            "AWS_ENDPOINT_URL": endpoint_url,
            # StartSyncExecution's endpoint is `sync-states.<region>...`: the SDK would prefix the
            # embedded AWS's host with `sync-` too (botocore's own switch turns that off).
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            **credentials,
        }
        env.update({k: str(v) for k, v in c.environment.items()})
        return env

    def _forward_output(self) -> None:
        """Send the handler's stdout/stderr to this process's log, prefixed with the function name."""
        assert self.process.stdout is not None
        fn_log = logging.getLogger(f"local.lambda.{self.config.name}")
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line:
                fn_log.info("[%s] %s", self.config.name, line)

    def wait_ready(self, timeout: float) -> None:
        """Wait for the cold start (handler import); raise WorkerDied/TimeoutError on failure."""
        message = self._read(timeout)
        if message.get("init") != "ok":
            self.init_error = message.get("error") or {"errorType": "Runtime.Unknown", "errorMessage": ""}

    def _read(self, timeout: float) -> dict:
        """Read one reply line from the private pipe, waiting at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self._resp_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._resp_fd, 65536)
            if not chunk:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=5)
                raise WorkerDied(self.process.returncode)
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def invoke(self, event: str, request_id: str, timeout: float) -> dict:
        deadline_ms = int((time.time() + timeout) * 1000)
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
        request = {
            "requestId": request_id,
            "event": event,
            "deadlineMs": deadline_ms,
            "invokedFunctionArn": self.config.arn,
            "traceId": trace,
        }
        try:
            self._requests.write(json.dumps(request) + "\n")
            self._requests.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise WorkerDied(self.process.poll()) from exc
        return self._read(timeout)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """End the process (used on timeout, crash clean-up and shutdown)."""
        with contextlib.suppress(OSError):
            self._requests.close()
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - kill is not ignorable
            log.warning("worker %s did not exit after kill", self.label)
        if self._resp_fd >= 0:
            os.close(self._resp_fd)
            self._resp_fd = -1


class RuntimeShutDown(RuntimeError):
    """The runtime (or this function's pool) is closed: the stack is stopping."""


class FunctionPool:
    """The warm workers of one function version; grows (up to `max_workers`) only when all are busy."""

    def __init__(
        self,
        config: FunctionConfig,
        code_dir: str,
        endpoint_url: str,
        max_workers: int,
        credentials: CredentialsProvider | None = None,
    ) -> None:
        self.config = config
        self.code_dir = code_dir
        self.endpoint_url = endpoint_url
        self.max_workers = max_workers
        self.credentials = credentials
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._count = 0
        self._spawned = 0
        self._cond = threading.Condition()
        self._closed = False

    def _acquire(self) -> Worker | None:
        """An idle warm worker, or None when the caller may start a new one (slot reserved)."""
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeShutDown("local Lambda runtime is shut down")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        self._busy.add(worker)
                        return worker
                    worker.stop()
                    self._count -= 1
                if self._count < self.max_workers:
                    self._count += 1
                    self._spawned += 1
                    return None
                self._cond.wait()

    def _release(self, worker: Worker, healthy: bool) -> None:
        with self._cond:
            self._busy.discard(worker)
            if healthy and not self._closed:
                self._idle.append(worker)
            else:
                self._count -= 1
            self._cond.notify()
        if not healthy or self._closed:
            worker.stop()

    def invoke(self, event: str) -> InvocationResult:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        timeout = float(self.config.timeout)
        worker = self._acquire()
        if worker is None:
            try:
                env = self.credentials(self.config.role, self.config.name) if self.credentials else None
                worker = Worker(self.config, self.code_dir, self.endpoint_url, self._spawned, env)
                with self._cond:
                    self._busy.add(worker)
                log.debug("cold start %s (%s)", worker.label, self.config.handler)
                worker.wait_ready(max(INIT_TIMEOUT_SECONDS, timeout))
            except Exception as exc:  # no credentials for its role, a crash at import, an init timeout
                if isinstance(worker, Worker):
                    self._release(worker, healthy=False)
                else:
                    with self._cond:
                        self._count -= 1
                        self._cond.notify()
                kind = "Runtime.ExitError" if not isinstance(exc, TimeoutError) else "Sandbox.Timedout"
                return InvocationResult(
                    _error_payload(kind, f"RequestId: {request_id} Error: Runtime failed to start: {exc!r}"),
                    "Unhandled",
                    request_id,
                )
            if worker.init_error is not None:
                self._release(worker, healthy=False)
                return InvocationResult(json.dumps(worker.init_error).encode(), "Unhandled", request_id)
        try:
            reply = worker.invoke(event, request_id, timeout)
        except TimeoutError:
            log.warning("%s timed out after %.2f s; killing that worker", worker.label, timeout)
            self._release(worker, healthy=False)
            return InvocationResult(
                _error_payload(
                    "Sandbox.Timedout", f"{request_id} Task timed out after {timeout:.2f} seconds", request_id
                ),
                "Unhandled",
                request_id,
                (time.monotonic() - started) * 1000,
            )
        except WorkerDied as exc:
            code = exc.args[0] if exc.args else None
            reason = f"signal: {-code}" if isinstance(code, int) and code < 0 else f"exit status {code}"
            if self._closed:  # killed by `close`: the stack is stopping, nothing to report
                log.debug("%s ended by shutdown during an invocation", worker.label)
            else:
                log.warning("%s exited during an invocation (%s); it will be replaced", worker.label, reason)
            self._release(worker, healthy=False)
            return InvocationResult(
                _error_payload(
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
                    request_id,
                ),
                "Unhandled",
                request_id,
                (time.monotonic() - started) * 1000,
            )
        self._release(worker, healthy=True)
        elapsed = (time.monotonic() - started) * 1000
        if reply.get("ok"):
            payload = reply["payload"].encode()
            if len(payload) > MAX_RESPONSE_BYTES:  # as Lambda refuses a synchronous answer over 6 MB
                message = (
                    f"Response payload size ({len(payload)} bytes) exceeded maximum allowed payload size "
                    f"({MAX_RESPONSE_BYTES} bytes)."
                )
                return InvocationResult(
                    _error_payload("Function.ResponseSizeTooLarge", message, request_id),
                    "Unhandled",
                    request_id,
                    elapsed,
                )
            return InvocationResult(payload, None, request_id, elapsed)
        return InvocationResult(json.dumps(reply["error"]).encode(), "Unhandled", request_id, elapsed)

    @property
    def size(self) -> int:
        return self._count

    def busy_pids(self) -> list[int]:
        with self._cond:
            return [worker.process.pid for worker in self._busy]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()
        for worker in busy:  # their invoking threads see EOF, answer Runtime.ExitError and clean up
            if worker.alive:
                worker.process.kill()


class LambdaRuntime:
    """All functions' pools. Thread-safe: invocations arrive on the embedded server's threads."""

    def __init__(
        self,
        endpoint_url: str,
        max_workers_per_function: int = 4,
        work_dir: str | None = None,
        credentials: CredentialsProvider | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.credentials = credentials
        self.max_workers = max_workers_per_function
        self._own_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="aiwf-lambda-")
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _pool(self, config: FunctionConfig) -> FunctionPool:
        key = f"{config.name}-{config.fingerprint}"
        with self._lock:
            if self._closed:
                raise RuntimeShutDown("local Lambda runtime is shut down")
            pool = self._pools.get(key)
            if pool is None:
                code_dir = os.path.join(self.work_dir, key)
                if not os.path.isdir(code_dir):
                    with zipfile.ZipFile(io.BytesIO(config.code_zip)) as archive:
                        archive.extractall(code_dir)
                for old_key in [k for k in self._pools if k.startswith(f"{config.name}-")]:
                    self._pools.pop(old_key).close()  # code or config changed: retire warm workers
                pool = self._pools[key] = FunctionPool(
                    config, code_dir, self.endpoint_url, self.max_workers, self.credentials
                )
        return pool

    def invoke(self, config: FunctionConfig, event: str | bytes | None) -> InvocationResult:
        """Run one invocation synchronously (RequestResponse semantics)."""
        if isinstance(event, bytes):
            event = event.decode("utf-8")
        if not event:
            event = "{}"
        try:
            result = self._pool(config).invoke(event)
        except RuntimeShutDown as exc:
            # The stack is stopping while the Step Functions engine, a stream poller or an
            # asynchronous invocation still calls: an error in Lambda's shape, at once, so every
            # caller ends its work the way it handles a failed function (none of them raises).
            request_id = str(uuid.uuid4())
            payload = _error_payload("Runtime.ExitError", f"RequestId: {request_id} Error: {exc}", request_id)
            return InvocationResult(payload, "Unhandled", request_id)
        log.debug(
            "%s %s in %.0f ms%s",
            config.name,
            result.request_id,
            result.duration_ms,
            f" ({result.function_error})" if result.function_error else "",
        )
        return result

    def busy_pids(self, handler: str) -> list[int]:
        """Process ids of the workers running an invocation now, of functions with `handler`
        (for fault-injection tests: which process to kill mid-step)."""
        with self._lock:
            pools = [p for p in self._pools.values() if p.config.handler == handler]
        return [pid for pool in pools for pid in pool.busy_pids()]

    def workers(self, function_name: str) -> int:
        """How many live execution environments a function has (for tests and diagnostics)."""
        with self._lock:
            return sum(p.size for k, p in self._pools.items() if p.config.name == function_name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
