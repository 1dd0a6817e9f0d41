"""Flows as Python objects: the documents they build, their validation, the round trip and the picture."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from aiwf_sdk import (
    Branch,
    Choice,
    Fail,
    Flow,
    FlowValidationError,
    ForEach,
    HttpCheck,
    Llm,
    Notify,
    Parallel,
    Retry,
    Succeed,
    TaskCheck,
    Transform,
    Until,
    WaitForEvent,
    When,
)
from aiwf_sdk.flow import _PACKAGED_SCHEMA, schema_path
from aiwf_sdk.steps import STEP_TYPES, camel

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "schema" / "flow.schema.json").read_text())
FLOW_FILES = sorted((ROOT / "flows").glob("*.yaml"))


def _example(flow_file: Path) -> ModuleType:
    path = ROOT / "examples" / (flow_file.stem.replace("-", "_") + ".py")
    assert path.is_file(), f"{flow_file.name} has no Python twin {path.relative_to(ROOT)}"
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flow_file", FLOW_FILES, ids=lambda path: path.name)
def test_every_shipped_flow_round_trips_exactly(flow_file):
    document = yaml.safe_load(flow_file.read_text())
    assert Flow.from_document(document).to_document() == document


@pytest.mark.parametrize("flow_file", FLOW_FILES, ids=lambda path: path.name)
def test_every_shipped_flow_has_a_python_twin_that_builds_the_same_document(flow_file):
    assert _example(flow_file).flow.to_document() == yaml.safe_load(flow_file.read_text())


def test_the_packaged_schema_is_the_repository_schema():
    """One owner: schema/flow.schema.json. The copy inside the package (for `pip install ./sdk`) must equal it;
    refresh it with `cp schema/flow.schema.json sdk/aiwf_sdk/flow.schema.json`."""
    assert json.loads(_PACKAGED_SCHEMA.read_text()) == SCHEMA
    assert schema_path() == ROOT / "schema" / "flow.schema.json"


@pytest.mark.parametrize("step_type", SCHEMA["$defs"]["step"]["properties"]["type"]["enum"])
def test_every_field_of_every_step_type_is_a_keyword_argument(step_type):
    cls = STEP_TYPES[step_type]
    schema_fields = set(SCHEMA["$defs"][step_type]["properties"]) - {"type"}
    python_fields = {camel(f.name) for f in fields(cls)} - {"id"}
    assert python_fields == schema_fields


@pytest.mark.parametrize(
    ("cls", "definition"),
    [(Retry, "retry"), (When, "condition"), (Until, "until"), (HttpCheck, "httpRequest"), (Branch, "branch")],
)
def test_every_field_of_the_parts_is_a_keyword_argument(cls, definition):
    schema_fields = set(SCHEMA["$defs"][definition]["properties"])
    python_fields = {camel(f.name) for f in fields(cls)}
    assert python_fields == schema_fields
    assert {camel(f.name) for f in fields(TaskCheck)} == {"handler", "input"}
    assert {camel(f.name) for f in fields(ForEach)} == set(
        SCHEMA["$defs"]["parallel"]["properties"]["forEach"]["properties"]
    )


def test_next_follows_the_list_and_references_are_objects():
    done = Succeed("done", output_path="doc")
    stop = Fail("stop", error="Stop")
    flow = Flow("f").then(
        Transform("a", value={"x": 1}, result_path="doc", catch=stop),
        Choice("b", choices=[When("doc.x", greater_than=0, next=done)], default=stop),
        done,
    )
    document = flow.to_document()
    assert document == {
        "id": "f",
        "startAt": "a",
        "steps": {
            "a": {"type": "transform", "value": {"x": 1}, "resultPath": "doc", "next": "b", "catch": "stop"},
            "b": {
                "type": "choice",
                "choices": [{"path": "doc.x", "greaterThan": 0, "next": "done"}],
                "default": "stop",
            },
            "done": {"type": "succeed", "outputPath": "doc"},
            "stop": {"type": "fail", "error": "Stop"},  # referred to, not listed: included
        },
    }


def test_a_null_value_is_kept_and_an_unset_one_left_out():
    flow = Flow("f", [Transform("a", value=None), Succeed("b")])
    assert flow.to_document()["steps"]["a"] == {"type": "transform", "value": None, "next": "b"}


def test_parallel_branches_are_sub_flows():
    branch = Branch([Transform("t", value="{{ item }}", result_path="v"), Succeed("ok", output_path="v")], id="one")
    flow = Flow("p", [Parallel("fan", branches=[branch]), Succeed("end")])
    assert flow.to_document()["steps"]["fan"] == {
        "type": "parallel",
        "branches": [
            {
                "id": "one",
                "startAt": "t",
                "steps": {
                    "t": {"type": "transform", "value": "{{ item }}", "resultPath": "v", "next": "ok"},
                    "ok": {"type": "succeed", "outputPath": "v"},
                },
            }
        ],
        "next": "end",
    }


def _problems(flow: Flow) -> list[dict[str, Any]]:
    with pytest.raises(FlowValidationError) as failure:
        flow.to_document()
    assert failure.value.code == "INVALID_FLOW"
    return failure.value.details


def test_schema_problems_name_the_python_step_and_its_python_field():
    llm = Llm("classify", model="m", prompt="p", max_tokens=0, retry=Retry(max_attempts=99))
    problems = _problems(Flow("bad", [llm, Succeed("done")]))
    assert {(p["step"], p["path"]) for p in problems} == {
        ("Llm('classify')", "/steps/classify/maxTokens"),
        ("Llm('classify')", "/steps/classify/retry/maxAttempts"),
    }
    messages = sorted(p["message"] for p in problems)
    assert messages[0].startswith("max_tokens: 0 is less than the minimum of 1")
    assert messages[1].startswith("retry.max_attempts: 99 is greater than the maximum of 10")


def test_a_problem_inside_a_branch_names_the_branch_step():
    branch = Branch([WaitForEvent("w", timeout_seconds=0, next="ok"), Succeed("ok")], id="b1")
    problems = _problems(Flow("bad", [Parallel("fan", branches=[branch]), Succeed("end")]))
    assert [(p["step"], p["path"]) for p in problems] == [
        ("WaitForEvent('w')", "/steps/fan/branches/0/steps/w/timeoutSeconds")
    ]


def test_a_last_step_without_next_and_a_foreign_reference_are_named():
    elsewhere = Succeed("elsewhere")
    problems = _problems(
        Flow(
            "bad",
            [
                Choice("c", choices=[When("x", equals=1, next="nowhere")], default=elsewhere),
                elsewhere,
                Transform("t", value=1),
            ],
        )
    )
    assert {(p["step"], p["message"].split(",")[0].split(":")[0]) for p in problems} == {
        ("Choice('c')", "refers to step 'nowhere'"),
        ("Transform('t')", "has no next"),
    }


def test_two_different_steps_with_one_id_are_refused():
    problems = _problems(Flow("bad", [Succeed("x"), Fail("x", error="E")]))
    assert problems[0]["step"] == "Fail('x')" and "two different steps" in problems[0]["message"]


def test_wait_for_event_fields_and_the_flow_level_fields():
    flow = Flow(
        "w",
        [WaitForEvent("w", timeout_seconds=60, heartbeat_seconds=10, notify=Notify(url="{{ input.u }}")), Succeed("s")],
        timeout_seconds=120,
        max_steps=50,
        description="d",
    )
    document = flow.to_document()
    assert (document["timeoutSeconds"], document["maxSteps"], document["description"]) == (120, 50, "d")
    assert document["steps"]["w"]["notify"] == {"url": "{{ input.u }}"}
    assert Flow.from_document(document).to_document() == document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"id": "x", "steps": {}}, "a flow document needs startAt"),
        ({"id": "x", "startAt": "a", "steps": {"a": {"type": "warp"}}}, "'warp' is not a step type"),
        ({"id": "x", "startAt": "a", "steps": {"a": {"type": "llm", "prompt": "p"}}}, "model"),
        ({"id": "x", "startAt": "a", "steps": {"a": {"type": "succeed"}}, "colour": "z"}, "Flow has no fields"),
    ],
)
def test_from_document_explains_a_document_it_cannot_read(document, message):
    with pytest.raises(FlowValidationError, match=message) as failure:
        Flow.from_document(document)
    assert failure.value.message.startswith("flow 'x' is not valid")


def test_from_document_refuses_fields_the_language_does_not_have():
    with pytest.raises(FlowValidationError, match="Transform has no fields"):
        Flow.from_document(
            {"id": "x", "startAt": "a", "steps": {"a": {"type": "transform", "value": 1, "colour": "red"}}}
        )


def test_mermaid_draws_steps_edges_and_branches():
    document = yaml.safe_load((ROOT / "flows" / "doc-triage.yaml").read_text())
    picture = Flow.from_document(document).to_mermaid()
    assert picture.startswith("flowchart TD\n  start_((start)) --> s_prepare\n")
    assert '  s_route -- "label equals #quot;urgent#quot;" --> s_approve\n' in picture
    assert "  s_approve -. catch .-> s_reject\n" in picture
    assert '  subgraph s_fanout__each__["for each of {{ doc.sections }}"]\n' in picture
    assert "    s_fanout__each__count --> s_fanout__each__done\n" in picture
    for step_id in document["steps"]:
        assert f"  s_{step_id}" in picture


def test_every_flow_level_field_of_the_schema_is_a_flow_keyword():
    from aiwf_sdk.flow import FLOW_FIELDS

    assert set(FLOW_FIELDS) == set(SCHEMA["properties"])
    durable = Flow("on-durable", [Succeed("done")], engine="durable")
    assert durable.to_document()["engine"] == "durable"
    assert Flow.from_document(durable.to_document()).to_document() == durable.to_document()
