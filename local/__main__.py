"""`python -m local [--stage dev] [--port 4000] [--fresh]`: run the local stack until Ctrl-C / SIGTERM.

Its data (tables, payload objects, the API key) is kept in `.local/state/<stage>/` and comes back
at the next start; `--fresh` (or `FRESH=1`) starts empty."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
from types import FrameType

from local import embedded
from local.persistence import StateError
from local.stack import DEFAULT_PORT, PROJECT_DIR, LocalStack, PortInUse


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument(
        "--stage",
        default=os.environ.get("STAGE", "dev"),
        help="Pulumi stack / stage whose Pulumi.<stage>.yaml is used (env STAGE; default dev)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", DEFAULT_PORT)),
        help=f"HTTP port on 127.0.0.1 (env PORT; default {DEFAULT_PORT}; 0 = any free port)",
    )
    parser.add_argument(
        "--tls-port",
        type=int,
        default=int(os.environ["TLS_PORT"]) if os.environ.get("TLS_PORT") else None,
        help="HTTPS/WSS port of the TLS twins (env TLS_PORT; default: HTTP port + 1, any free one with --port 0)",
    )
    parser.add_argument(
        "--project-dir", default=str(PROJECT_DIR), help="the Pulumi project to run (default: this repository)"
    )
    parser.add_argument(
        "--outputs",
        default=None,
        help="where to write the stack outputs as one JSON object (default: <project-dir>/.local/outputs.json)",
    )
    parser.add_argument(
        "--state-dir",
        default=None,
        help="where the stack's data is kept across restarts (default: <project-dir>/.local/state/<stage>)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        default=os.environ.get("FRESH", "") not in ("", "0", "false", "no"),
        help="start empty: forget the data kept from earlier runs (env FRESH=1)",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def wait_for_stop(stop: threading.Event) -> None:
    """Sleep in the main thread until a signal handler sets `stop`.

    The kernel gives a signal sent to the process to any thread that does not block it, most often
    one of the stack's many server threads. CPython then only notes the signal for the main thread,
    and a main thread asleep on a lock (`stop.wait()`) never wakes to run the handler: a SIGTERM or
    Ctrl-C was left unanswered until something else woke it. Whichever thread takes a signal writes
    to the wakeup fd, so a main thread waiting on that fd wakes, runs the handler and sees `stop`."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        while not stop.is_set():
            select.select([reader], [], [])
            with contextlib.suppress(BlockingIOError):
                reader.recv(4096)
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()


def main(argv: list[str] | None = None) -> int:
    gc.disable()  # until the stack serves: see LocalStack.start
    args = _parse(argv)
    outputs = args.outputs or os.path.join(args.project_dir, ".local", "outputs.json")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(name)-12s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    stop = threading.Event()
    state_dir = args.state_dir or os.path.join(args.project_dir, ".local", "state", args.stage)
    stack = LocalStack(
        stage=args.stage,
        port=args.port,
        tls_port=args.tls_port,
        project_dir=args.project_dir,
        outputs_path=outputs,
        state_dir=state_dir,
        fresh=args.fresh,
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            stop.set()
            if not stack.serving:  # interrupt a start-up in progress; once serving, `stop` is enough
                raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # `kill -USR1 <pid>` prints where every thread is: how this stack's hangs are found
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    code = 0
    try:
        stack.start()
        gc.enable()
        print(f"\nStack outputs (also in {outputs}):", flush=True)
        print(json.dumps(stack.outputs, indent=2, sort_keys=True, default=str), flush=True)
        print(f"\nWeb console: {stack.outputs['consoleUrl']}", flush=True)
        print(f"Serving on {stack.base_url} and {stack.tls_base_url} (TLS) - Ctrl-C to stop.", flush=True)
        wait_for_stop(stop)
    except KeyboardInterrupt:
        pass
    except (PortInUse, StateError) as exc:
        print(exc, file=sys.stderr, flush=True)  # one line: what is wrong and what to do
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if code == 0:
            embedded.quiet_while_stopping()
            logging.getLogger("local").info("stopping: workers, HTTP server, embedded AWS")
        stack.stop()
    return code


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown.

    By the time `main` returns, `LocalStack.stop` has ended everything that must end (the HTTP
    server, every Lambda worker, the stream pollers, moto's server). What the teardown would add
    is a final garbage collection of the whole heap (moto's backends, the program, the schema, the
    executions: millions of objects after a busy session) and joining the Step Functions engine's
    threads: 4-7 s of a 5-8 s stop when measured, for nothing that outlives the process."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
