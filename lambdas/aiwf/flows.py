"""Flow documents: validation against schema/flow.schema.json plus the graph checks a schema cannot express.

The schema file ships inside the deployment package (see aiwf.package_files).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from .package_files import schema_file
from .patterns import pattern_error


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_file("flow.schema.json").read_text()))


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(part) for part in path) if path else "/"


def validation_errors(document: Any) -> list[dict[str, str]]:
    """Every problem with a flow document, each as {path, message}; empty when valid."""
    errors = [
        {"path": _pointer(error.absolute_path), "message": error.message}
        for error in sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if errors:
        return errors
    return _graph_errors(document)


def _graph_errors(document: dict[str, Any]) -> list[dict[str, str]]:
    return _step_graph_errors(document["steps"], document["startAt"], "", in_branch=False)


def _step_graph_errors(steps: dict[str, Any], start_at: str, prefix: str, *, in_branch: bool) -> list[dict[str, str]]:
    """Targets that do not exist, unreachable steps and misplaced steps, in one step graph (and its branches)."""
    errors: list[dict[str, str]] = []

    def check_target(target: str | None, where: str) -> None:
        if target is not None and target not in steps:
            errors.append({"path": where, "message": f"step {target!r} does not exist"})

    check_target(start_at, f"{prefix}/startAt")
    for step_id, step in steps.items():
        base = f"{prefix}/steps/{step_id}"
        check_target(step.get("next"), f"{base}/next")
        check_target(step.get("catch"), f"{base}/catch")
        check_target(step.get("default"), f"{base}/default")
        for index, choice in enumerate(step.get("choices", [])):
            check_target(choice.get("next"), f"{base}/choices/{index}/next")
            errors.extend(_pattern_errors(step_id, choice, f"{base}/choices/{index}/matches"))
        if isinstance(step.get("until"), dict):
            errors.extend(_pattern_errors(step_id, step["until"], f"{base}/until/matches"))
        if "heartbeatSeconds" in step and step["heartbeatSeconds"] >= step.get("timeoutSeconds", 0):
            errors.append(
                {"path": f"{base}/heartbeatSeconds", "message": "heartbeatSeconds must be less than timeoutSeconds"}
            )
        if step["type"] == "parallel":
            if in_branch:
                errors.append({"path": base, "message": "a parallel step cannot be nested inside a branch"})
                continue
            branches = [(f"{base}/branches/{i}", b) for i, b in enumerate(step.get("branches", []))]
            if "forEach" in step:
                branches.append((f"{base}/forEach/branch", step["forEach"]["branch"]))
            ids = [branch.get("id") for _, branch in branches if "id" in branch]
            if len(ids) != len(set(ids)):
                errors.append({"path": f"{base}/branches", "message": "branch ids must be unique"})
            for where, branch in branches:
                errors.extend(_step_graph_errors(branch["steps"], branch["startAt"], where, in_branch=True))
    if not errors:
        unreachable = sorted(set(steps) - _reachable(start_at, steps))
        errors.extend(
            {"path": f"{prefix}/steps/{step_id}", "message": f"step {step_id!r} is never reached from startAt"}
            for step_id in unreachable
        )
    return errors


def _pattern_errors(step_id: str, condition: dict[str, Any], where: str) -> list[dict[str, str]]:
    """A `matches` pattern RE2 refuses (it could not be matched in linear time), named with its step."""
    pattern = condition.get("matches")
    reason = pattern_error(pattern) if isinstance(pattern, str) else None
    if reason is None:
        return []
    return [{"path": where, "message": f"step {step_id!r}: the pattern {pattern!r} is not RE2 syntax ({reason})"}]


def _reachable(start: str, steps: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = [start]
    while pending:
        step_id = pending.pop()
        if step_id in seen:
            continue
        seen.add(step_id)
        step = steps[step_id]
        targets = [step.get("next"), step.get("catch"), step.get("default")]
        targets += [choice.get("next") for choice in step.get("choices", [])]
        pending.extend(target for target in targets if target)
    return seen
