"""How fast the local stack's Lambda workers start and run side by side, and how fast an
asynchronous invoke through the embedded AWS answers.

These are the figures the local-runtime tests used to assert against fixed limits (a machine
under load broke them); the tests now prove the behaviour (concurrency, early answers) with
barriers and gates, and the timings live here, printed, never asserted.

    .venv/bin/python -m bench.workers [--rounds 3] [--small]

`--small` is one round (the suite runs it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from local.lambda_runtime import FunctionConfig, LambdaRuntime  # noqa: E402
from tests.local.conftest import HANDLER_SOURCE, make_zip  # noqa: E402

ENDPOINT = "http://127.0.0.1:9"  # the handlers timed here never call AWS


def config(code: bytes, name: str, handler: str, timeout: int = 30) -> FunctionConfig:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    return FunctionConfig(name=name, arn=arn, handler=f"app.{handler}", code_zip=code, timeout=timeout)


def seconds(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def one_round(code: bytes, n: int) -> dict[str, float]:
    """Fresh runtime: one cold start, one warm call, then three 1 s calls that need three workers."""
    runtime = LambdaRuntime(ENDPOINT, max_workers_per_function=3)
    try:
        echo = config(code, f"bench-echo-{n}", "echo")
        cold = seconds(lambda: runtime.invoke(echo, "{}"))
        warm = seconds(lambda: runtime.invoke(echo, "{}"))
        sleeper = config(code, f"bench-sleep-{n}", "sleep")
        runtime.invoke(sleeper, '{"seconds": 0}')
        threads = [threading.Thread(target=runtime.invoke, args=(sleeper, '{"seconds": 1}')) for _ in range(3)]

        def side_by_side() -> None:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        parallel = seconds(side_by_side)
        timed_out = config(code, f"bench-timeout-{n}", "sleep", timeout=1)
        timeout = seconds(lambda: runtime.invoke(timed_out, '{"seconds": 30}'))
        return {"cold start": cold, "warm call": warm, "3 x 1 s side by side": parallel, "1 s timeout": timeout}
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="one round (what the suite runs)")
    args = parser.parse_args()
    if args.small:
        args.rounds = 1
    code = make_zip({"app.py": HANDLER_SOURCE})
    rounds = [one_round(code, n) for n in range(args.rounds)]
    print(f"Lambda workers, {args.rounds} rounds (seconds: median, min-max)")
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(f"  {key:<22} {statistics.median(values):7.3f}  {min(values):.3f}-{max(values):.3f}")
    print(json.dumps({k: [round(r[k], 3) for r in rounds] for k in rounds[0]}))


if __name__ == "__main__":
    main()
