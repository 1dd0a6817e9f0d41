"""Every bench still runs: its small mode (`--small`), as a subprocess, exits 0 and prints each of
its figures.

Nothing else ran the benches, so one could break (bench/transitions.py did, once least privilege
was enforced on the local stack) and nobody would notice until someone needed its figures. The
figures are matched by their labels and number formats only: a timing is a figure of the
machine, never something to assert. A new bench needs an entry here (the last test says so).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"-?[\d.,]+"
MS = rf"p50 {NUMBER} ms  p99 {NUMBER} ms"
ENGINE_FLOWS = ("10-step inline", "wait\\+poll\\+4-branch parallel", "2 inline \\+ 4-branch parallel")
TRANSITION_LABELS = (
    "10-step inline, orchestrator",
    "10-step inline, Allma-style loop",
    "wait\\+poll\\+parallel, orchestrator",
    "wait\\+poll\\+parallel, Allma-style",
    "2 inline \\+ 4-branch parallel",
)

# bench module -> the lines its small mode must print (regular expressions, one line each)
FIGURES: dict[str, tuple[str, ...]] = {
    "dev_stop": tuple(rf"^  busy, {signal} #1: +{NUMBER} s  exit {NUMBER}  \S" for signal in ("Ctrl-C", "SIGTERM")),
    "engines": tuple(
        rf"^{flow} +{engine} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} ms$"
        for flow in ENGINE_FLOWS
        for engine in ("stepfunctions", "durable")
    ),
    "fanout": tuple(rf"^subscribers: {n} p50: {NUMBER} ms p95: {NUMBER} ms p99: {NUMBER} ms$" for n in (2,)),
    "fanout_floor": tuple(
        rf"^{leg}: subscribers: {n} p50: {NUMBER} ms p95: {NUMBER} ms p99: {NUMBER} ms$"
        for leg in ("hub", "raw")
        for n in (2,)
    ),
    "iam": tuple(
        rf"^  {call} +authorized: {MS}   not checked: {MS}$"
        for call in ("GetItem", re.escape("TransactWriteItems (2 Puts)"))
    ),
    "load": (
        r"^tasks: started 5, terminal \{'SUCCEEDED': 5\}, stuck 0$",
        rf"^records: {NUMBER} history records, seq mismatches 0, histories with a gap 0$",
        rf"^delivery: {NUMBER} messages, duplicates 0, missing 0, phantom 0, tasks out of order 0$",
        rf"^start latency: p50 {NUMBER} ms, p99 {NUMBER} ms$",
        rf"^rate: {NUMBER} tasks/s, {NUMBER} records/s over {NUMBER} s$",
        rf"^steps/s with ~10 history records stored: {NUMBER}$",
        rf"^steps/s with ~100 history records stored: {NUMBER} \({NUMBER}x the first\)$",
        r"^problems: none$",
    ),
    "publisher_outage": (
        rf"^outage {NUMBER} s: tasks {NUMBER} history records {NUMBER} dead-lettered batches {NUMBER} "
        rf"received {NUMBER} duplicates {NUMBER} missing {NUMBER} phantom {NUMBER} "
        rf"all delivered (?:{NUMBER} s|never) after the API returned$",
    ),
    "startup": (rf"^  fresh +{NUMBER} s, interpreter and imports {NUMBER} s; ready in {NUMBER} s: ",),
    "transitions": (
        *(
            rf"^{label} +transitions +{NUMBER} \({NUMBER}/step\)  lambda invocations +{NUMBER}  "
            rf"\${NUMBER} per 1,000 tasks$"
            for label in TRANSITION_LABELS
        ),
        *(
            rf"^quick run: {label} +express +{NUMBER} ms \+ transitions +{NUMBER}  lambda invocations +{NUMBER}  "
            rf"\${NUMBER} per 1,000 tasks$"
            for label in ("10-step inline", "2 inline \\+ parallel")
        ),
        rf"^quick run / Standard cost, 10-step inline: {NUMBER}$",
        rf"^transitions per inline step: {NUMBER}$",
        rf"^Allma-style / orchestrator transitions: {NUMBER}x \(10-step inline\), {NUMBER}x \(wait\+poll\+parallel\)$",
    ),
    "workers": tuple(
        rf"^  {re.escape(label)} +{NUMBER}  {NUMBER}-{NUMBER}$"
        for label in ("cold start", "warm call", "3 x 1 s side by side", "1 s timeout")
    ),
}


@pytest.mark.parametrize("bench", sorted(FIGURES))
def test_the_benchs_small_mode_finishes_and_prints_its_figures(bench: str):
    run = subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", "--small"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, f"bench.{bench} --small exited {run.returncode}:\n{run.stderr[-4000:]}"
    missing = [figure for figure in FIGURES[bench] if not re.search(figure, run.stdout, re.MULTILINE)]
    assert not missing, f"bench.{bench} --small did not print {missing}; it printed:\n{run.stdout}"


def test_every_bench_has_a_small_mode_the_suite_runs():
    assert sorted(path.stem for path in (ROOT / "bench").glob("*.py")) == sorted(FIGURES)
