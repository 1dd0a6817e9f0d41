"""Fifty tasks at once through the real APIs, and a count of everything that came out.

The same check as `bench/load.py` (which runs 200 and 1,000): every task terminal, task `seq`
equal to its last history record, histories contiguous, each committed change delivered to an
unmodified gql subscriber exactly once and in `seq` order, no 5xx. Counts only; the rates it
also measures are figures for the bench, never asserted here.
"""

from __future__ import annotations

from bench.load import LoadRun


def test_fifty_concurrent_tasks_end_once_with_every_change_delivered_once_in_order(deployed):
    run = LoadRun(deployed.outputs, tasks=50, concurrency=25, steps=5)
    report = run.run(deadline_seconds=300)
    assert report.problems() == [], "\n".join(report.lines())
    assert report.started == 50
    assert report.statuses == {"SUCCEEDED": 50}
    assert report.records == 50 * 8  # PENDING, RUNNING, 5 steps, SUCCEEDED
    assert report.messages == report.records
