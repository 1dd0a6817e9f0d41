"""Templates: a render past its time limit stops with `TemplateTimeout` (not retryable).

The limit is lowered to a fraction of a second here; the checks that a render stopped allow the
busy machine generous slack, while a render without the limit would run for hours.
"""

from __future__ import annotations

import math
import threading
import time

import pytest

from aiwf import templates
from aiwf.errors import StepError
from aiwf.settings import response_bytes, template_ms
from aiwf.steps import INLINE_STEPS
from aiwf.template_sandbox import _DEADLINE, TemplateTimedOut, rendering_until
from aiwf.templates import render

LIMIT_MS = 200
CONTEXT = {"input": {"name": "Ada", "items": [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}]}}
ENDLESS = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "nested loops with output": "{% for i in range(100000) %}{% for j in range(100000) %}{% if j < 0 %}x"
    "{% endif %}{% endfor %}{% endfor %}",
    "a loop inside a recursive macro": "{% macro m(n) %}{% for i in range(100000) %}{% endfor %}{{ m(n) }}"
    "{% endmacro %}{{ m(1) }}",
    "a loop over a loop's filter": "{% for i in range(100000) %}{% for j in range(100000) if j % 7 %}"
    "{% endfor %}{% endfor %}",
    "a loop of lookups": "{% for i in range(100000) %}{% for j in range(100000) %}{% set x = input.name %}"
    "{% endfor %}{% endfor %}",
}


@pytest.fixture
def short_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "template_ms", lambda: LIMIT_MS)


def test_the_default_limit_is_one_second():
    assert template_ms() == 1_000


def test_the_limits_come_from_the_stage_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What infra writes from `limits.templateMs` / `limits.responseBytes` (tests/infra/test_config.py)."""
    monkeypatch.setenv("LIMITS_TEMPLATE_MS", "250")
    monkeypatch.setenv("LIMITS_RESPONSE_BYTES", "4096")
    assert (template_ms(), response_bytes()) == (250, 4096)


@pytest.mark.usefixtures("short_limit")
@pytest.mark.parametrize("template", ENDLESS.values(), ids=ENDLESS.keys())
def test_a_render_past_the_limit_fails_with_template_timeout(template: str) -> None:
    with pytest.raises(StepError) as caught:  # an endless render that returns at all was stopped
        render({"value": template}, CONTEXT)
    assert caught.value.error_name == "TemplateTimeout" and not caught.value.retryable
    assert caught.value.details == {"template": template, "limitMs": LIMIT_MS}
    assert f"{LIMIT_MS} ms" in caught.value.message and "Error" not in caught.value.message


@pytest.mark.usefixtures("short_limit")
def test_a_transform_step_fails_with_template_timeout():
    step = {"type": "transform", "value": {"x": ENDLESS["nested loops"]}, "next": "done"}
    with pytest.raises(StepError) as caught:
        INLINE_STEPS["transform"]("shape", step, CONTEXT)
    assert caught.value.error_name == "TemplateTimeout"


def test_the_deadline_is_gone_after_a_render():
    render("{% for i in range(3) %}{{ i }}{% endfor %}", CONTEXT)
    assert _DEADLINE.get() == math.inf


def test_loops_render_as_before():
    template = (
        "{% for it in input['items'] %}{{ it.id }}/{{ loop.length }}"
        "{% for t in it.tags if t != 'b' %}{{ t }}{% else %}-{% endfor %};{% endfor %}"
        "{% for n in tree recursive %}{{ n.v }}{% if n.c %}({{ loop(n.c) }}){% endif %}{% endfor %}"
    )
    context = {**CONTEXT, "tree": [{"v": 1, "c": [{"v": 2, "c": []}]}]}
    assert render(template, context) == "1/2a;2/2-;1(2)"
    assert render("{{ input['items'] | map(attribute='id') | list }}", CONTEXT) == [1, 2]


def test_a_nested_deadline_keeps_the_earlier_one():
    template = templates._ENV.from_string("{% for i in range(10) %}{% endfor %}")
    with rendering_until(time.monotonic() - 1), rendering_until(time.monotonic() + 60), pytest.raises(TemplateTimedOut):
        template.render()


def test_each_thread_keeps_its_own_deadline():
    """The local stack runs functions in threads of one process: one render's deadline is its own."""
    past_due = threading.Event()
    results: list[object] = []

    def late() -> None:
        with rendering_until(time.monotonic() - 1):
            past_due.set()
            time.sleep(0.2)

    thread = threading.Thread(target=late)
    thread.start()
    past_due.wait(5)
    results.append(render("{% for i in range(1000) %}{% endfor %}ok", CONTEXT))
    thread.join()
    assert results == ["ok"]
