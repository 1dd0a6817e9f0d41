"""`Flow`: steps chained into a flow document, validated against the flow schema, and back.

A step without `next` goes on to the step listed after it; explicit `next`, `catch` and a
choice's targets refer to step objects, and a step that is referred to but not listed is
included. `to_document()` validates the result against `flow.schema.json` (the repository's
`schema/flow.schema.json`, or the copy shipped in this package) and names the Python step of each
problem. Graph checks the schema cannot express (unreachable steps, nesting) stay with the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from aiwf_sdk.errors import FlowValidationError
from aiwf_sdk.steps import (
    STEP_TYPES,
    UNSET,
    Branch,
    Choice,
    ForEach,
    HttpCheck,
    Notify,
    Ref,
    Retry,
    Step,
    TaskCheck,
    Until,
    When,
    camel,
    document_fields,
    snake,
)

_PACKAGED_SCHEMA = Path(__file__).with_name("flow.schema.json")
_REPOSITORY_SCHEMA = Path(__file__).resolve().parents[2] / "schema" / "flow.schema.json"


def schema_path() -> Path:
    """The flow schema: the repository's own file when the SDK runs from a checkout, else the packaged copy
    (tests/unit/sdk asserts the copy equals the repository's file, so there is one owner)."""
    return _REPOSITORY_SCHEMA if _REPOSITORY_SCHEMA.is_file() else _PACKAGED_SCHEMA


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator  # on first use: it takes a while to import

    return Draft202012Validator(json.loads(schema_path().read_text()))


Location = tuple[str | int, ...]  # a JSON path into the document
# Fields whose value is any JSON value: None there is null; elsewhere None leaves the field out.
_JSON_VALUES = frozenset({"value", "body", "input", "equals", "not_equals", "items"})


# The document's top-level fields, each a keyword of `Flow` (a test holds this to the schema).
FLOW_FIELDS = ("id", "description", "engine", "startAt", "timeoutSeconds", "maxSteps", "steps")


class Flow:
    """A flow: an id, steps, and the flow-level settings of the document."""

    def __init__(
        self,
        id: str,
        steps: Sequence[Step] = (),
        *,
        description: str | None = None,
        engine: Literal["stepfunctions", "durable"] | None = None,
        timeout_seconds: int | None = None,
        max_steps: int | None = None,
        start_at: Ref | None = None,
    ) -> None:
        self.id = id
        self.steps: list[Step] = list(steps)
        self.description = description
        self.engine = engine
        self.timeout_seconds = timeout_seconds
        self.max_steps = max_steps
        self.start_at = start_at

    def then(self, *steps: Step) -> Flow:
        """Append steps (each without `next` goes on to the one after it); returns the flow, for chaining."""
        self.steps.extend(steps)
        return self

    def __repr__(self) -> str:
        return f"Flow({self.id!r}, {len(self.steps)} steps)"

    # -- to and from the document ----------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        """The flow document, validated against the flow schema; FlowValidationError names each bad step."""
        builder = _Builder(self.id)
        document: dict[str, Any] = {"id": self.id}
        if self.description is not None:
            document["description"] = self.description
        if self.engine is not None:
            document["engine"] = self.engine
        graph = builder.graph(self.steps, self.start_at, ("steps",), f"Flow({self.id!r})")
        document["startAt"] = graph["startAt"]
        if self.timeout_seconds is not None:
            document["timeoutSeconds"] = self.timeout_seconds
        if self.max_steps is not None:
            document["maxSteps"] = self.max_steps
        document["steps"] = graph["steps"]
        if builder.problems:
            raise FlowValidationError(self.id, builder.problems)
        problems = [
            builder.problem_at(tuple(error.absolute_path), error.message)
            for error in sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
        ]
        if problems:
            raise FlowValidationError(self.id, problems)
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Flow:
        """The flow of a document (YAML or JSON loaded into a dict); `to_document()` gives it back unchanged."""
        flow_id = str(document.get("id"))
        try:
            known = set(FLOW_FIELDS)
            unknown = sorted(set(document) - known)
            if unknown:
                raise _Unreadable("Flow", "/", f"Flow has no fields {unknown}")
            missing = [key for key in ("id", "startAt", "steps") if not isinstance(document.get(key), str | dict)]
            if missing:
                raise _Unreadable("Flow", "/", f"a flow document needs {', '.join(missing)}")
            steps = _steps_from_document(document["steps"], "/steps")
        except _Unreadable as problem:
            raise FlowValidationError(flow_id, [problem.details]) from None
        return cls(
            flow_id,
            list(steps.values()),
            description=document.get("description"),
            engine=document.get("engine"),
            timeout_seconds=document.get("timeoutSeconds"),
            max_steps=document.get("maxSteps"),
            start_at=steps.get(document["startAt"], document["startAt"]),
        )

    # -- a picture ------------------------------------------------------------------------------
    def to_mermaid(self) -> str:
        """A Mermaid flowchart of the flow: steps, next / choice / catch edges, parallel branches as subgraphs."""
        document = self.to_document()
        lines = ["flowchart TD", "  start_((start)) --> " + _node_id((), document["startAt"])]
        lines += _mermaid_graph(document["steps"], (), "  ")
        return "\n".join(lines) + "\n"


# -- building the document ------------------------------------------------------------------------
class _Builder:
    """Turns step objects into step documents, remembering where each step went (for messages)."""

    def __init__(self, flow_id: str) -> None:
        self.flow_id = flow_id
        self.problems: list[dict[str, str]] = []
        self.where: dict[Location, str] = {(): f"Flow({flow_id!r})"}

    def problem(self, who: str, path: Location, message: str) -> None:
        self.problems.append({"step": who, "path": _pointer(path), "message": message})

    def problem_at(self, path: Location, message: str) -> dict[str, str]:
        """A schema error at `path`, named after the innermost step (or branch) that holds it."""
        for length in range(len(path), -1, -1):
            if path[:length] in self.where:
                rest = ".".join(snake(str(p)) if isinstance(p, str) else f"[{p}]" for p in path[length:])
                rest = rest.replace(".[", "[")
                return {
                    "step": self.where[path[:length]],
                    "path": _pointer(path),
                    "message": f"{rest}: {message}" if rest else message,
                }
        raise AssertionError("unreachable: the empty path is always known")

    def graph(self, listed: Sequence[Step], start_at: Ref | None, at: Location, owner: str) -> dict[str, Any]:
        """{startAt, steps} of one step graph (the flow's, or a branch's)."""
        ordered = _with_referenced(listed)
        by_id: dict[str, Step] = {}
        for step in ordered:
            if step.id in by_id and by_id[step.id] is not step:
                self.problem(repr(step), (*at, step.id), f"two different steps are named {step.id!r}")
            by_id.setdefault(step.id, step)
        inferred: dict[int, Step] = {}
        for index, step in enumerate(listed):
            if step.TAKES_NEXT and getattr(step, "next", None) is None and index + 1 < len(listed):
                inferred[id(step)] = listed[index + 1]
        for step in ordered:
            if step.TAKES_NEXT and getattr(step, "next", None) is None and id(step) not in inferred:
                self.problem(repr(step), (*at, step.id), "has no next: give next=, or list a step after it")
        steps: dict[str, Any] = {}
        for step in ordered:
            if by_id.get(step.id) is not step:
                continue
            self.where[(*at, step.id)] = repr(step)
            steps[step.id] = self.step(step, by_id, inferred.get(id(step)), (*at, step.id))
        first = start_at if start_at is not None else (listed[0] if listed else None)
        if first is None:
            self.problem(owner, at, "has no steps")
        return {"startAt": self.ref(first, by_id, owner, (*at[:-1], "startAt")) if first else "", "steps": steps}

    def ref(self, target: Ref, by_id: Mapping[str, Step], who: str, at: Location) -> str:
        target_id = target.id if isinstance(target, Step) else target
        if target_id not in by_id or (isinstance(target, Step) and by_id[target_id] is not target):
            self.problem(who, at, f"refers to step {target_id!r}, which is not part of this flow or branch")
        return target_id

    def step(self, step: Step, by_id: Mapping[str, Step], next_step: Step | None, at: Location) -> dict[str, Any]:
        document: dict[str, Any] = {"type": step.TYPE}
        for f in fields(step):
            if f.name == "id":
                continue
            value = getattr(step, f.name)
            if f.name == "next" and value is None:
                value = next_step
            if value is UNSET or (value is None and f.name not in _JSON_VALUES):
                continue
            key = camel(f.name)
            document[key] = self.value(value, step, by_id, (*at, key))
        return document

    def value(self, value: Any, step: Step, by_id: Mapping[str, Step], at: Location) -> Any:
        """A field's document value: step references by id, parts as objects, branches as graphs."""
        if isinstance(value, Step) or (isinstance(value, str) and at[-1] in ("next", "catch", "default")):
            return self.ref(value, by_id, repr(step), at)
        if isinstance(value, Branch):
            return self.branch(value, step, at)
        if isinstance(value, list) and value and is_dataclass(value[0]):
            return [self.value(item, step, by_id, (*at, index)) for index, item in enumerate(value)]
        if is_dataclass(value) and not isinstance(value, type):
            part: dict[str, Any] = {}
            if isinstance(value, HttpCheck | TaskCheck):
                part["type"] = value.TYPE
            for f in fields(value):
                item = getattr(value, f.name)
                if item is UNSET or (item is None and f.name not in _JSON_VALUES):
                    continue
                part[camel(f.name)] = self.value(item, step, by_id, (*at, camel(f.name)))
            return part
        return value

    def branch(self, branch: Branch, step: Step, at: Location) -> dict[str, Any]:
        who = f"{step!r} branch {branch.id or at[-1]!r}"
        self.where[at] = who
        graph = self.graph(branch.steps, branch.start_at, (*at, "steps"), who)
        document: dict[str, Any] = {}
        if branch.id is not None:
            document["id"] = branch.id
        if branch.comment is not None:
            document["comment"] = branch.comment
        return {**document, **graph}


def _with_referenced(listed: Sequence[Step]) -> list[Step]:
    """The listed steps, then every step they refer to (transitively) that is not listed, in the order found."""
    ordered = list(listed)
    seen = {id(step) for step in ordered}
    index = 0
    while index < len(ordered):
        for _, target in ordered[index].references():
            if isinstance(target, Step) and id(target) not in seen:
                seen.add(id(target))
                ordered.append(target)
        index += 1
    return ordered


def _pointer(path: Location) -> str:
    return "/" + "/".join(str(part) for part in path)


# -- reading a document -------------------------------------------------------------------------
class _Unreadable(Exception):
    """A document the step classes cannot hold (unknown type or field, a required field missing)."""

    def __init__(self, step: str, path: str, message: str) -> None:
        super().__init__(message)
        self.details = {"step": step, "path": path, "message": message}


_PARTS: dict[str, type[Any]] = {"retry": Retry, "notify": Notify, "until": Until, "forEach": ForEach}


def _steps_from_document(documents: Mapping[str, Any], at: str) -> dict[str, Step]:
    steps: dict[str, Step] = {}
    for step_id, document in documents.items():
        step_type = document.get("type") if isinstance(document, Mapping) else None
        cls = STEP_TYPES.get(step_type) if isinstance(step_type, str) else None
        if cls is None:
            raise _Unreadable(step_id, f"{at}/{step_id}/type", f"{step_type!r} is not a step type")
        kwargs = _kwargs(cls, {k: v for k, v in document.items() if k != "type"}, f"{at}/{step_id}")
        try:
            steps[step_id] = cls(step_id, **kwargs)
        except TypeError as exc:  # a required field is missing
            raise _Unreadable(f"{cls.__name__}({step_id!r})", f"{at}/{step_id}", str(exc)) from None
    for step in steps.values():  # ids to the step objects, now that all exist
        for name in ("next", "catch", "default"):
            target = getattr(step, name, None)
            if isinstance(target, str) and target in steps:
                setattr(step, name, steps[target])
        if isinstance(step, Choice):
            for condition in step.choices:
                if isinstance(condition.next, str) and condition.next in steps:
                    condition.next = steps[condition.next]
    return steps


def _kwargs(cls: type[Any], document: Mapping[str, Any], at: str) -> dict[str, Any]:
    names = document_fields(cls)
    unknown = sorted(set(document) - set(names))
    if unknown:
        message = f"{cls.__name__} has no fields {unknown}"
        raise _Unreadable(cls.__name__, at, message)
    return {names[key]: _part(key, value, f"{at}/{key}") for key, value in document.items()}


def _part(key: str, value: Any, at: str) -> Any:
    if key in _PARTS and isinstance(value, Mapping):
        if key == "forEach":
            return ForEach(items=value.get("items"), branch=_branch(value.get("branch") or {}, f"{at}/branch"))
        return _make(_PARTS[key], _kwargs(_PARTS[key], value, at), at)
    if key == "choices" and isinstance(value, list):
        return [_make(When, _kwargs(When, item, f"{at}/{index}"), f"{at}/{index}") for index, item in enumerate(value)]
    if key == "check" and isinstance(value, Mapping):
        check_cls: type[Any] = TaskCheck if value.get("type") == "task" else HttpCheck
        return _make(check_cls, _kwargs(check_cls, {k: v for k, v in value.items() if k != "type"}, at), at)
    if key == "branches" and isinstance(value, list):
        return [_branch(item, f"{at}/{index}") for index, item in enumerate(value)]
    return value


def _make(cls: type[Any], kwargs: dict[str, Any], at: str) -> Any:
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise _Unreadable(cls.__name__, at, str(exc)) from None


def _branch(document: Mapping[str, Any], at: str) -> Branch:
    steps = _steps_from_document(document.get("steps") or {}, f"{at}/steps")
    start = document.get("startAt")
    return Branch(
        list(steps.values()),
        id=document.get("id"),
        comment=document.get("comment"),
        start_at=steps.get(start, start) if isinstance(start, str) else None,
    )


# -- Mermaid ------------------------------------------------------------------------------------
_SHAPES = {"choice": ('{"', '"}'), "succeed": ('(["', '"])'), "fail": ('(["', '"])'), "parallel": ('[["', '"]]')}


def _node_id(scope: tuple[str, ...], step_id: str) -> str:
    return "s_" + "__".join((*scope, step_id)).replace("-", "_")


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def _condition_label(condition: Mapping[str, Any]) -> str:
    operator, operand = next((k, v) for k, v in condition.items() if k not in ("path", "next"))
    return _label(f"{condition['path']} {snake(operator).replace('_', ' ')} {json.dumps(operand)}")


def _mermaid_graph(steps: Mapping[str, Any], scope: tuple[str, ...], indent: str) -> Iterator[str]:
    for step_id, step in steps.items():
        node = _node_id(scope, step_id)
        open_, close = _SHAPES.get(step["type"], ('["', '"]'))
        yield f"{indent}{node}{open_}{_label(step_id)}<br/>{step['type']}{close}"
        if "next" in step:
            yield f"{indent}{node} --> {_node_id(scope, step['next'])}"
        for condition in step.get("choices", []):
            yield f'{indent}{node} -- "{_condition_label(condition)}" --> {_node_id(scope, condition["next"])}'
        if "default" in step:
            yield f"{indent}{node} -- default --> {_node_id(scope, step['default'])}"
        if "catch" in step:
            yield f"{indent}{node} -. catch .-> {_node_id(scope, step['catch'])}"
        branches = [
            (b.get("id") or f"b{i}", b, b.get("id") or f"branch {i}") for i, b in enumerate(step.get("branches", []))
        ]
        if "forEach" in step:
            branches.append(("each", step["forEach"]["branch"], f"for each of {step['forEach']['items']}"))
        for name, branch, title in branches:
            inner = (*scope, step_id, name)
            yield f'{indent}subgraph {_node_id(inner, "")}["{_label(title)}"]'
            yield from _mermaid_graph(branch["steps"], inner, indent + "  ")
            yield f"{indent}end"
            yield f"{indent}{node} --> {_node_id(inner, branch['startAt'])}"
