"""How long `make dev` takes to be ready (outputs written), and where the time goes.

Starts `python -m local` as `make dev` does (the real program, the default stage; a free port,
outputs and state in a temporary folder so the checkout's `.local/` is left alone) and times it
from the process start to `outputs.json`, a few rounds: empty (`--fresh`), then again with the
state the first round left (what a restart reads back). The stack's own "ready in" line splits
the time it measured into its phases (embedded AWS, program under mocks with provisioning,
servers, outputs); what the process took before that (the interpreter and the imports) is the
difference.

    .venv/bin/python -m bench.startup [--rounds 3] [--root DIR] [--small]

`--root` runs another checkout (for a before/after comparison: `git worktree add` or
`git archive` of an older commit). `--small` is one round, a fresh start (the suite runs it).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"ready in ([\d.]+) s(?:: (.*))?")


def one_start(root: Path, folder: Path, fresh: bool) -> tuple[float, str]:
    """Seconds from the process start to its outputs file, and its "ready in" line."""
    outputs = folder / "outputs.json"
    outputs.unlink(missing_ok=True)
    log = folder / "log.txt"
    command = [sys.executable, "-m", "local", "--port", "0", "--outputs", str(outputs)]
    supports_state = (
        "--state-dir"
        in subprocess.run(
            [sys.executable, "-m", "local", "--help"], cwd=root, capture_output=True, text=True, check=False
        ).stdout
    )
    if supports_state:
        command += ["--state-dir", str(folder / "state")] + (["--fresh"] if fresh else [])
    with open(log, "w") as out:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while not outputs.exists():
                if process.poll() is not None:
                    raise SystemExit(f"the stack exited:\n{log.read_text()[-3000:]}")
                time.sleep(0.02)
            elapsed = time.monotonic() - started
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    found = READY.search(log.read_text())
    return elapsed, found.group(0) if found else "(no ready line)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to start (default: this one)")
    parser.add_argument("--small", action="store_true", help="one fresh start (what the suite runs)")
    args = parser.parse_args()
    if args.small:
        args.rounds = 1
    print(f"make dev start-up ({args.root}), default stage, process start -> outputs.json written:")
    with tempfile.TemporaryDirectory(prefix="aiwf-startup-") as tmp:
        folder = Path(tmp)
        for round_ in range(args.rounds):
            fresh = round_ == 0
            elapsed, line = one_start(args.root, folder, fresh)
            ready = READY.search(line)
            before = f", interpreter and imports {elapsed - float(ready.group(1)):.1f} s" if ready else ""
            print(f"  {'fresh  ' if fresh else 'restart'} {elapsed:4.1f} s{before}; {line}")


if __name__ == "__main__":
    main()
