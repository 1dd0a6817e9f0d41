"""The process-wide embedded AWS: one moto server and one Lambda worker runtime, shared and ref-counted.

moto keeps its state in module globals, so every moto server in a process sees the same
resources, and its Lambda patch is process-global too. Rather than pretend two stacks in one
process are isolated, they share one embedded AWS: the first user starts it, the last one
stops it (killing every worker and forgetting every resource). Test packages that each start
a `LocalStack` (or use the embedded AWS directly) can then overlap safely.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass

from local import (
    durable_service,
    dynamodb_event_source,
    iam_enforcement,
    lambda_invoke,
    moto_glue,
    moto_server,
    sqs_event_source,
)
from local.iam_enforcement import LocalIam
from local.lambda_runtime import LambdaRuntime

log = logging.getLogger("local")


@dataclass
class EmbeddedAws:
    moto: moto_server.MotoServer
    runtime: LambdaRuntime
    iam: LocalIam

    @property
    def url(self) -> str:
        return self.moto.url


# The embedded AWS is many threads of one interpreter handing work to each other (moto's request
# threads, the stream pollers, the HTTP server's loop and its thread pool): with CPython's default
# 5 ms switch interval, a thread just woken (a stream poller after a commit) waits for the GIL until
# the thread holding it blocks, ~1 ms after a DynamoDB write. A shorter interval while it runs.
GIL_SWITCH_INTERVAL_SECONDS = 0.0002

_lock = threading.Lock()
_shared: EmbeddedAws | None = None
_users = 0
_previous_switch_interval: float | None = None

# Stopping cuts the Step Functions engine off from work in flight: its threads go on for a moment
# with executions whose functions and server are gone (a request of theirs that moto's server is
# still handling when the reset comes can fail with a traceback from werkzeug), and say so at length.
# Nothing they report then is about anything that still exists, so these loggers are quiet from the
# stop to the next start.
QUIET_WHILE_STOPPED = ("moto", "local.moto", "werkzeug")
_quieted: dict[str, int] = {}


def acquire(region: str = "us-east-1", max_workers_per_function: int = 4) -> EmbeddedAws:
    """Start (or join) the embedded AWS of this process."""
    global _shared, _users, _previous_switch_interval
    with _lock:
        if _shared is None:
            for name, level in _quieted.items():
                logging.getLogger(name).setLevel(level)
            _quieted.clear()
            moto = moto_server.start_server(port=0, region=region)
            iam = LocalIam(moto.port, region, enforce=iam_enforcement.enforcement_requested())
            iam.start()  # before any other call: everything after it is authorized
            iam_enforcement.activate(iam)
            runtime = LambdaRuntime(moto.url, max_workers_per_function, credentials=iam.function_environment)
            lambda_invoke.install_lambda_dispatcher(runtime.invoke)
            dynamodb_event_source.install_stream_delivery(moto.url)
            durable_service.start(moto.url, region)  # durable functions run in the same workers
            _shared = EmbeddedAws(moto, runtime, iam)
            _previous_switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_previous_switch_interval, GIL_SWITCH_INTERVAL_SECONDS))
            log.info("embedded AWS (moto %s) on %s", moto_glue.MOTO_VERSION, moto.url)
        _users += 1
        return _shared


def _quiet_locked() -> None:
    for name in QUIET_WHILE_STOPPED:
        _quieted.setdefault(name, logging.getLogger(name).level)
        logging.getLogger(name).setLevel(logging.CRITICAL)


def quiet_while_stopping() -> None:
    """Quiet the engine's loggers now, for a process about to stop its only stack: from the signal
    on, what the engine reports is about work being cut off (the next `acquire` restores them)."""
    with _lock:
        _quiet_locked()


def release(aws: EmbeddedAws) -> None:
    """Leave the embedded AWS; the last user stops workers, forgets all resources and stops moto."""
    global _shared, _users, _previous_switch_interval
    with _lock:
        if _shared is not aws or _users == 0:
            return
        _users -= 1
        if _users:
            return
        _shared = None
        if _previous_switch_interval is not None:
            sys.setswitchinterval(_previous_switch_interval)
            _previous_switch_interval = None
        _quiet_locked()
    # The order keeps executions still running from reaching anything: the workers end first (from
    # then on an invocation answers an error at once), moto forgets every resource and stops, and
    # only then is moto's own Lambda invoke (Docker) put back, when no request can reach it any more.
    sqs_event_source.stop_all()
    durable_service.stop()
    dynamodb_event_source.uninstall_stream_delivery()
    aws.runtime.close()
    iam_enforcement.activate(None)
    aws.iam.stop()
    try:
        moto_server.reset(aws.moto)
    except Exception as exc:  # the server may already be unreachable at interpreter exit
        log.debug("moto reset failed: %s", exc)
    aws.moto.stop()
    lambda_invoke.uninstall_lambda_dispatcher()
