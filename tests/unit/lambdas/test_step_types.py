"""The step types the runtime runs are the step types the flow schema declares.

A step type lives in two places: `schema/flow.schema.json` (the `type` enum of `$defs/step`, and
the branch that picks its fields) and the runtime's tables, `INLINE_STEPS` (run inside
process-steps) or `NATIVE_STEPS` (a wait or loop in the state machine). A type in the schema that
neither table has would pass validation and fail at run time; a type in a table that the schema
lacks could never be written. This ties them together.
"""

from __future__ import annotations

import json

from aiwf.native_steps import NATIVE_STEPS
from aiwf.package_files import schema_file
from aiwf.steps import INLINE_STEPS


def _step_schema() -> dict:
    schema = json.loads(schema_file("flow.schema.json").read_text())
    return schema["$defs"]["step"] | {"$defs": schema["$defs"]}


def test_every_schema_step_type_runs_inline_or_natively_and_nothing_else_does():
    declared = _step_schema()["properties"]["type"]["enum"]
    assert len(declared) == len(set(declared))
    assert not set(INLINE_STEPS) & set(NATIVE_STEPS), "a step type runs in one place"
    assert set(declared) == set(INLINE_STEPS) | set(NATIVE_STEPS)


def test_every_schema_step_type_has_its_own_fields():
    step = _step_schema()
    branches = {
        rule["if"]["properties"]["type"]["const"]: rule["then"]["$ref"].removeprefix("#/$defs/")
        for rule in step["allOf"]
    }
    assert set(branches) == set(step["properties"]["type"]["enum"])
    for step_type, definition in branches.items():
        assert definition == step_type
        assert step["$defs"][definition]["properties"]["type"] == {"const": step_type}
