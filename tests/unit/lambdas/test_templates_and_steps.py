"""Templates render from the context in a sandbox; inline steps move the context forward."""

from __future__ import annotations

import pytest

from aiwf.errors import StepError
from aiwf.steps import INLINE_STEPS
from aiwf.templates import render

CONTEXT = {"input": {"text": "hi", "items": [1, 2], "n": 3}, "taskId": "t-1"}


def test_single_expression_keeps_its_type_and_text_renders():
    assert render({"a": "{{ input.items }}", "b": "n={{ input.n }}", "c": 5}, CONTEXT) == {
        "a": [1, 2],
        "b": "n=3",
        "c": 5,
    }


def test_object_keys_win_over_dict_methods():
    assert render("{{ input.items | length }}", CONTEXT) == 2


@pytest.mark.parametrize(
    "template",
    ["{{ ().__class__.__bases__[0].__subclasses__() }}", "{{ input.text.__class__.__mro__ }}"],
)
def test_sandbox_refuses_python_internals(template):
    with pytest.raises(StepError) as caught:
        render(template, CONTEXT)
    assert caught.value.error_name == "TemplateError"


def test_undefined_names_are_step_errors():
    with pytest.raises(StepError, match="undefined"):
        render("{{ missing.value }}", CONTEXT)


def test_transform_writes_at_result_path_or_step_id():
    outcome = INLINE_STEPS["transform"](
        "shape", {"type": "transform", "value": "{{ input.text }}", "next": "x"}, CONTEXT
    )
    assert outcome.next == "x"
    with_path = INLINE_STEPS["transform"](
        "shape", {"type": "transform", "value": "{{ input.text }}", "resultPath": "doc.text", "next": "x"}, CONTEXT
    )
    assert with_path.context["doc"] == {"text": "hi"}


def test_transform_without_result_path_uses_step_id():
    outcome = INLINE_STEPS["transform"]("shape", {"type": "transform", "value": 1, "next": "x"}, {})
    assert outcome.context == {"shape": 1}


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ({"path": "input.text", "equals": "hi"}, True),
        ({"path": "input.text", "notEquals": "hi"}, False),
        ({"path": "input.n", "greaterThan": 2}, True),
        ({"path": "input.n", "lessThan": 2}, False),
        ({"path": "input.text", "matches": "^h"}, True),
        ({"path": "input.absent", "isPresent": False}, True),
        ({"path": "input.absent", "equals": None}, False),
        ({"path": "input.items.1", "equals": 2}, True),
    ],
)
def test_choice_conditions(condition, matches):
    step = {"type": "choice", "choices": [{**condition, "next": "yes"}], "default": "no"}
    assert INLINE_STEPS["choice"]("route", step, CONTEXT).next == ("yes" if matches else "no")


def test_choice_without_match_or_default_is_a_step_error():
    step = {"type": "choice", "choices": [{"path": "input.text", "equals": "zzz", "next": "yes"}]}
    with pytest.raises(StepError) as caught:
        INLINE_STEPS["choice"]("route", step, CONTEXT)
    assert caught.value.error_name == "NoChoiceMatched"


def test_succeed_output_path_and_fail_error_shape():
    assert INLINE_STEPS["succeed"]("done", {"type": "succeed", "outputPath": "input.items"}, CONTEXT).output == [1, 2]
    assert INLINE_STEPS["succeed"]("done", {"type": "succeed"}, CONTEXT).output == CONTEXT
    failed = INLINE_STEPS["fail"](
        "no", {"type": "fail", "error": "Rejected", "cause": "text was {{ input.text }}"}, CONTEXT
    )
    assert failed.error == {
        "errorName": "Rejected",
        "errorMessage": "text was hi",
        "errorDetails": None,
        "retryable": False,
        "stepId": "no",
        "branchId": None,
    }
