"""Templates: bounded output, refused before the memory is allocated, and errors in plain words.

Allocation is measured with tracemalloc (bytes, not time), so the checks hold on a busy machine.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from aiwf.branches import branch_definitions
from aiwf.errors import StepError
from aiwf.runtime_limits import TEMPLATE_OUTPUT_MAX_BYTES
from aiwf.steps import INLINE_STEPS
from aiwf.templates import render

CONTEXT = {"input": {"text": "hi", "items": [1, 2], "n": 3, "doc": {"a": 1}}, "taskId": "t-1"}
PYTHON_NAMES = (
    "ZeroDivisionError",
    "OverflowError",
    "TypeError",
    "ValueError",
    "RecursionError",
    "SecurityError",
    "UndefinedError",
    "TemplateSyntaxError",
    "KeyError",
    "Exception",
    "Traceback",
)


def render_measured(template: str) -> tuple[StepError, int]:
    """The StepError `template` raises, and the peak bytes allocated while rendering it."""
    tracemalloc.start()
    try:
        with pytest.raises(StepError) as caught:
            render(template, CONTEXT)
        return caught.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 20000000 }}",
        "text {{ 'x' * 20000000 }}",
        "{{ 20000000 * 'x' }}",
        "{{ ['x'] * 20000000 }}",
        "{{ 'x'.ljust(20000000) }}",
        "{{ 'x' | center(20000000) }}",
        "{{ 'x' | indent(20000000, true) }}",
        "{{ '%20000000s' % 'x' }}",
        "{{ '%s' | format('x') ~ ('%*s' % (20000000, 'x')) }}",
        "{{ '{:>20000000}'.format('x') }}",
        "{{ 'ab' | replace('', 'x' * 1000000) }}",
        "{{ range(100000) | join('x' * 1000) }}",
        "{{ ('x' * 1000).join(range(100000)) }}",
        "{{ 2 ** 100000000 }}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set _ = ns.l.extend(ns.l) %}{% endfor %}{{ 1 }}",
        "{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}",
        "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set _ = ns.l.append('y' * 1000) %}"
        "{% endfor %}{{ ns.l }}",
        "{% set s %}{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}{{ s | length }}",
        "{{ ['x' * 1000000] * 100 }}",
    ],
)
def test_oversized_output_is_refused_before_it_is_allocated(template):
    error, peak = render_measured(template)

    assert error.error_name == "TemplateOutputTooLarge", error.message
    assert str(TEMPLATE_OUTPUT_MAX_BYTES) in error.message or "digits" in error.message
    assert error.details["limitBytes"] == TEMPLATE_OUTPUT_MAX_BYTES
    assert peak < 12 * TEMPLATE_OUTPUT_MAX_BYTES, f"{peak} bytes allocated before the limit held"


def test_the_twenty_megabyte_string_allocates_next_to_nothing():
    error, peak = render_measured("{{ 'x' * 20000000 }}")
    assert error.error_name == "TemplateOutputTooLarge"
    assert peak < TEMPLATE_OUTPUT_MAX_BYTES


def test_output_up_to_the_limit_renders():
    assert len(render("{{ 'x' * 1000000 }}", CONTEXT)) == 1_000_000
    assert render("{{ input.text * 3 }}-{{ [1] * 2 }}-{{ 2 ** 10 }}-{{ '%s=%d' % ('n', 3) }}", CONTEXT) == (
        "hihihi-[1, 1]-1024-n=3"
    )
    assert render("{{ input.items | join(',') }}|{{ 'a' ~ input.n }}|{{ 'x'.center(5) }}", CONTEXT) == "1,2|a3|  x  "


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{ 1/0 }}", "divides by zero"),
        ("{{ 1 // 0 }}", "divides by zero"),
        ("{{ 10.0 ** 400 }}", "too large"),
        ("{{ input.text + 1 }}", "wrong type"),
        ("{{ 'x' * 2e7 }}", "wrong type"),
        ("{{ missing.value }}", "'missing' is undefined"),
        ("{{ input.nothing.deeper }}", "has no attribute 'nothing'"),
        ("{{ ().__class__.__bases__[0].__subclasses__() }}", "sandbox does not allow"),
        ("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(1) }}", "recurses too deeply"),
        ("{{ {% }}", "not valid syntax"),
        ("{{ input.items[5] }}", "has no element 5"),
        ("{{ '%d' % 'x' }}", "wrong type"),
        ("{{ input.text.encode('nope') }}", "unknown encoding"),
        ("{{ input.doc.a.b.c }}", "has no attribute"),
        ("{{ input.text.index('z') }}", "is not valid here (substring not found)"),
    ],
)
def test_template_errors_are_plain_words(template, says):
    with pytest.raises(StepError) as caught:
        render(template, CONTEXT)

    error = caught.value
    assert error.error_name == "TemplateError", error.message
    assert says in error.message
    assert repr(template) in error.message  # the template is named
    assert error.details == {"template": template}
    assert not any(name in error.message for name in PYTHON_NAMES), error.message


def test_long_templates_are_shortened_in_the_message():
    template = "{{ 1/0 }}" + "x" * 10_000
    with pytest.raises(StepError) as caught:
        render(template, CONTEXT)
    assert len(caught.value.message) < 400
    assert len(caught.value.details["template"]) <= 2_000


def condition_step(condition: dict[str, Any]) -> dict[str, Any]:
    return {"type": "choice", "choices": [{**condition, "next": "a"}], "default": "b"}


def test_a_choice_pattern_that_is_not_a_regular_expression_is_a_plain_step_error():
    with pytest.raises(StepError) as caught:
        INLINE_STEPS["choice"]("route", condition_step({"path": "input.text", "matches": "(unclosed"}), CONTEXT)
    assert caught.value.error_name == "InvalidCondition"
    assert "'(unclosed'" in caught.value.message and "not a valid regular expression" in caught.value.message
    assert "error" not in caught.value.message.split(":")[0]


def test_for_each_items_that_are_not_a_list_are_named_in_json_terms():
    step = {"forEach": {"items": "{{ input.doc }}", "branch": {}}}
    with pytest.raises(StepError) as caught:
        branch_definitions(step, CONTEXT)
    assert caught.value.error_name == "InvalidItems"
    assert caught.value.message == "forEach.items must render to a list, got an object"
