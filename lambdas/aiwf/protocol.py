"""The orchestrator protocol, loaded from `schema/orchestrator.json` (the one definition).

The state machine's Route follows the `action` ProcessSteps answers; the process function does
what a call's `mode` says; a step that handed over leaves `Task.step_state` of a `kind`; and a few
error names cross the boundary (the resume failure WaitForEvent catches, the invocation faults
the state machine retries). infra/orchestrator_asl.py builds the state machine from the same
file, so adding an action or a mode means editing it, the step that answers it and the builder.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from .package_files import schema_file


def _entries(section: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in section.items() if not key.startswith("$")}


DOCUMENT: dict[str, Any] = json.loads(schema_file("orchestrator.json").read_text())

# The answers of ProcessSteps and PollCheck: `{"taskId", "action", ...fields}`.
Action = StrEnum("Action", {name: name for name in _entries(DOCUMENT["actions"])})  # type: ignore[misc]
# The `mode` of a call of the process function.
Mode = StrEnum("Mode", _entries(DOCUMENT["modes"]))  # type: ignore[misc]
# `Task.step_state["kind"]`.
StepStateKind = StrEnum("StepStateKind", _entries(DOCUMENT["stepStateKinds"]))  # type: ignore[misc]
# Error names shared with the state machine (and the task errors clients see).
ErrorName = StrEnum(  # type: ignore[misc]
    "ErrorName", {key: entry["name"] for key, entry in _entries(DOCUMENT["errors"]).items()}
)
# The faults the state machine retries on every Lambda task before normalizing them.
INVOCATION_FAULTS: tuple[str, ...] = tuple(
    entry["name"] for entry in _entries(DOCUMENT["errors"]).values() if entry.get("invocationFault")
)


# The actions the Express machine (quick runs) has a state for; for any other, ProcessSteps on the
# Express machine hands the task over to the Standard machine (CONTINUED).
EXPRESS_ACTIONS: frozenset[str] = frozenset(
    name for name, spec in _entries(DOCUMENT["actions"]).items() if spec["express"]
)
