"""The `task` step's handler registry and the poll backoff arithmetic (pure)."""

from __future__ import annotations

import pytest

from aiwf.errors import StepError
from aiwf.native_steps import poll_seconds
from aiwf.step_handlers import load_handlers, step_handler
from aiwf.steps import INLINE_STEPS


def test_shipped_handlers_are_registered():
    assert {"word_count", "slugify"} <= set(load_handlers())


def test_a_name_registers_once():
    @step_handler("unit-test-once")
    def first(payload, *, task_id, step_id):
        return payload

    with pytest.raises(ValueError, match="registered twice"):
        step_handler("unit-test-once")(lambda payload, **_: payload)


def test_a_handler_bug_is_a_step_error_named_after_the_exception():
    @step_handler("unit-test-bug")
    def bug(payload, *, task_id, step_id):
        return {}["missing"]

    step = {"type": "task", "handler": "unit-test-bug", "next": "n"}
    with pytest.raises(StepError) as raised:
        INLINE_STEPS["task"]("s", step, {"input": {}, "taskId": "t"})
    assert raised.value.error_name == "KeyError"


def test_poll_intervals_grow_by_the_backoff_rate():
    step = {"intervalSeconds": 2, "backoffRate": 2}
    assert [poll_seconds(step, attempt) for attempt in (1, 2, 3)] == [2, 4, 8]
    assert poll_seconds({"intervalSeconds": 1}, 5) == 1
