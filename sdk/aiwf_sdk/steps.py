"""One class per step type of the flow language, each field of `flow.schema.json` a typed keyword argument.

Python names are the document's names in snake_case (`result_path` is `resultPath`); a step refers
to another by the object itself (or its id), never by a string that could drift. The classes only
hold values: `aiwf_sdk.flow` turns them into a document and validates it against the schema, which
stays the one owner of what a valid step is (tests/unit/sdk checks every schema field has its
keyword here).
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import Any, ClassVar, Literal, Union


class _Unset:
    """A field left out of the document (for fields where None would mean JSON null)."""

    _instance: ClassVar[_Unset | None] = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()
"""The default of fields whose value may be any JSON value, null included: left out of the document."""

Ref = Union["Step", str]
"""Another step: the object itself, or its id (it must be part of the same flow or branch)."""

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def camel(name: str) -> str:
    """`result_path` -> `resultPath`: the document's name of a Python field."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def snake(name: str) -> str:
    """`resultPath` -> `result_path`: the Python name of a document field."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


# -- parts of steps ------------------------------------------------------------------------------
@dataclass
class Retry:
    """How often a failed step is tried again (`retry`)."""

    max_attempts: int | None = None
    interval_seconds: float | None = None
    backoff_rate: float | None = None


@dataclass
class Notify:
    """Where a `wait_for_event` step POSTs {taskId, stepId, resumeToken, input}; `url` is a template."""

    url: str


@dataclass
class When:
    """One condition of a `choice` step: `path` compared with exactly one operator, then `next`."""

    path: str
    _: KW_ONLY
    next: Ref
    equals: Any = UNSET
    not_equals: Any = UNSET
    greater_than: float | None = None
    less_than: float | None = None
    is_present: bool | None = None
    matches: str | None = None


@dataclass
class Until:
    """The condition a `poll` step waits for, on its check's result: `path` and exactly one operator."""

    path: str
    _: KW_ONLY
    equals: Any = UNSET
    not_equals: Any = UNSET
    greater_than: float | None = None
    less_than: float | None = None
    is_present: bool | None = None
    matches: str | None = None


@dataclass
class HttpCheck:
    """A `poll` step's check as one HTTP request (url, headers and body are templates)."""

    url: str
    _: KW_ONLY
    method: HttpMethod | None = None
    headers: dict[str, str] | None = None
    body: Any = UNSET
    timeout_seconds: float | None = None
    TYPE: ClassVar[str] = "http"


@dataclass
class TaskCheck:
    """A `poll` step's check as a registered Python step handler."""

    handler: str
    _: KW_ONLY
    input: Any = UNSET
    TYPE: ClassVar[str] = "task"


@dataclass(eq=False)
class Branch:
    """A step graph of its own inside a `parallel` step (a sub-flow): it starts at `start_at`, or
    the first step; a step without `next` goes on to the one after it in `steps`."""

    steps: list[Step]
    _: KW_ONLY
    id: str | None = None
    comment: str | None = None
    start_at: Ref | None = None


@dataclass
class ForEach:
    """One `branch` per item of `items` (a template rendering to a list), with `item` and `branchId` in its context."""

    items: Any
    branch: Branch


# -- steps ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class Step:
    """A step of a flow; `id` names it in the document. Steps compare by identity: a reference is to this object."""

    id: str
    TYPE: ClassVar[str] = ""
    TAKES_NEXT: ClassVar[bool] = True  # a step that goes on to another (the others end, or choose)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    def references(self) -> list[tuple[str, Ref]]:
        """(field, step) for every step this one may go to: next, catch, a choice's targets."""
        found: list[tuple[str, Ref]] = []
        for name in ("next", "catch", "default"):
            target = getattr(self, name, None)
            if target is not None:
                found.append((name, target))
        for index, condition in enumerate(getattr(self, "choices", None) or []):
            found.append((f"choices[{index}].next", condition.next))
        return found


@dataclass(eq=False, repr=False)
class Transform(Step):
    """Puts `value` (templates rendered from the task context) at `result_path`."""

    _: KW_ONLY
    value: Any
    result_path: str | None = None
    next: Ref | None = None
    retry: Retry | None = None
    catch: Ref | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "transform"


@dataclass(eq=False, repr=False)
class Choice(Step):
    """Goes to the `next` of the first condition that holds, else to `default`."""

    _: KW_ONLY
    choices: list[When] = field(default_factory=list)
    default: Ref | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "choice"
    TAKES_NEXT: ClassVar[bool] = False


@dataclass(eq=False, repr=False)
class Succeed(Step):
    """Ends the task (or branch) successfully; its output is the context value at `output_path`."""

    _: KW_ONLY
    output_path: str | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "succeed"
    TAKES_NEXT: ClassVar[bool] = False


@dataclass(eq=False, repr=False)
class Fail(Step):
    """Ends the task (or branch) with `error` and `cause` (a template)."""

    _: KW_ONLY
    error: str
    cause: str | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "fail"
    TAKES_NEXT: ClassVar[bool] = False


@dataclass(eq=False, repr=False)
class WaitForEvent(Step):
    """Parks the task until it is resumed with the token sent to `notify`, or `timeout_seconds` end it."""

    _: KW_ONLY
    timeout_seconds: int
    heartbeat_seconds: int | None = None
    notify: Notify | None = None
    result_path: str | None = None
    next: Ref | None = None
    catch: Ref | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "wait_for_event"


@dataclass(eq=False, repr=False)
class Poll(Step):
    """Runs `check` until `until` holds, waiting `interval_seconds` in the state machine between checks."""

    _: KW_ONLY
    check: HttpCheck | TaskCheck
    until: Until
    interval_seconds: int
    max_attempts: int
    backoff_rate: float | None = None
    result_path: str | None = None
    next: Ref | None = None
    catch: Ref | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "poll"


@dataclass(eq=False, repr=False)
class Http(Step):
    """One HTTP request (url, headers and body are templates); a non-2xx answer is an HttpError."""

    _: KW_ONLY
    url: str
    method: HttpMethod | None = None
    headers: dict[str, str] | None = None
    body: Any = UNSET
    timeout_seconds: float | None = None
    result_path: str | None = None
    next: Ref | None = None
    retry: Retry | None = None
    catch: Ref | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "http"


@dataclass(eq=False, repr=False)
class Task(Step):
    """A Python step handler registered by name in the deployment package; `input` is a template."""

    _: KW_ONLY
    handler: str
    input: Any = UNSET
    result_path: str | None = None
    next: Ref | None = None
    retry: Retry | None = None
    catch: Ref | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "task"


@dataclass(eq=False, repr=False)
class Parallel(Step):
    """Runs static `branches`, or one branch per item with `for_each`; the result lists each output or error."""

    _: KW_ONLY
    branches: list[Branch] | None = None
    for_each: ForEach | None = None
    max_concurrency: int | None = None
    on_branch_error: Literal["fail", "continue"] | None = None
    result_path: str | None = None
    next: Ref | None = None
    catch: Ref | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "parallel"


@dataclass(eq=False, repr=False)
class Llm(Step):
    """One model call; the reply text (or its JSON with `output_format="json"`) lands at `result_path`."""

    _: KW_ONLY
    model: str
    prompt: str
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    output_format: Literal["text", "json"] | None = None
    result_path: str | None = None
    next: Ref | None = None
    retry: Retry | None = None
    catch: Ref | None = None
    comment: str | None = None
    TYPE: ClassVar[str] = "llm"


STEP_TYPES: dict[str, type[Step]] = {
    cls.TYPE: cls for cls in (Transform, Choice, Succeed, Fail, WaitForEvent, Poll, Http, Task, Parallel, Llm)
}
"""The step classes by their document `type`."""


def document_fields(cls: type[Any]) -> dict[str, str]:
    """{document name: Python name} of a step (or step part) class's fields."""
    return {camel(f.name): f.name for f in fields(cls) if f.name != "_"}
