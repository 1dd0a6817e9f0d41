"""`matches` patterns: RE2 syntax, matched in linear time, refused at registration otherwise."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from aiwf.errors import BadRequest
from aiwf.flow_documents import checked_document
from aiwf.flows import validation_errors
from aiwf.patterns import pattern_error, search
from aiwf.steps import INLINE_STEPS

ROOT = Path(__file__).resolve().parents[3]
HELLO = yaml.safe_load((ROOT / "flows" / "hello.yaml").read_text())


def _with_pattern(pattern: str) -> dict:
    flow = copy.deepcopy(HELLO)
    flow["steps"]["check"]["choices"].append({"path": "doc.name", "matches": pattern, "next": "reject"})
    return flow


def test_a_catastrophic_pattern_is_matched_in_linear_time():
    started = time.perf_counter()
    assert not search("^(a+)+$", "a" * 26 + "b")
    assert not search("^(a+)+$", "a" * 100_000 + "b")
    assert time.perf_counter() - started < 0.5


def test_search_finds_the_pattern_anywhere_like_re_search():
    assert search("^h", "hello") and search("ll", "hello") and not search("^l", "hello")


def test_the_choice_step_uses_the_linear_engine():
    step = {"type": "choice", "choices": [{"path": "text", "matches": "^(a+)+$", "next": "a"}], "default": "b"}
    started = time.perf_counter()
    outcome = INLINE_STEPS["choice"]("route", step, {"text": "a" * 40 + "!"})
    assert outcome.next == "b" and time.perf_counter() - started < 0.5


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)b", "(?<!a)b", "(unclosed"])
def test_patterns_outside_re2_are_refused_with_the_step_named(pattern):
    assert pattern_error(pattern)
    errors = validation_errors(_with_pattern(pattern))
    assert [e["path"] for e in errors] == ["/steps/check/choices/1/matches"]
    assert "'check'" in errors[0]["message"] and "RE2" in errors[0]["message"]
    with pytest.raises(BadRequest) as caught:
        checked_document(_with_pattern(pattern))
    assert caught.value.code == "INVALID_FLOW"


def test_a_poll_until_pattern_is_checked_too():
    flow = {
        "id": "p",
        "startAt": "wait",
        "steps": {
            "wait": {
                "type": "poll",
                "check": {"type": "http", "url": "https://example.com"},
                "until": {"path": "status", "matches": r"(x)\1"},
                "intervalSeconds": 5,
                "maxAttempts": 3,
                "next": "done",
            },
            "done": {"type": "succeed"},
        },
    }
    errors = validation_errors(flow)
    assert [e["path"] for e in errors] == ["/steps/wait/until/matches"], errors


def test_ordinary_patterns_register():
    assert validation_errors(_with_pattern(r"^[A-Z][a-z]+\s\d{2,}$")) == []
