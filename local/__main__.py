"""`python -m local [--stage dev] [--port 4000]`: run the local stack until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from types import FrameType

from local.stack import DEFAULT_PORT, PROJECT_DIR, LocalStack


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
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    outputs = args.outputs or os.path.join(args.project_dir, ".local", "outputs.json")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(name)-12s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            stop.set()
            raise KeyboardInterrupt  # also interrupts a start-up in progress

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(
        stage=args.stage, port=args.port, tls_port=args.tls_port, project_dir=args.project_dir, outputs_path=outputs
    )
    try:
        stack.start()
        print(f"\nStack outputs (also in {outputs}):", flush=True)
        print(json.dumps(stack.outputs, indent=2, sort_keys=True, default=str), flush=True)
        print(f"\nWeb console: {stack.outputs['consoleUrl']}", flush=True)
        print(f"Serving on {stack.base_url} and {stack.tls_base_url} (TLS) - Ctrl-C to stop.", flush=True)
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        logging.getLogger("local").info("stopping: workers, HTTP server, embedded AWS")
        stack.stop()
    return 0


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
