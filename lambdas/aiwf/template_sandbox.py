"""The template sandbox: Jinja's SandboxedEnvironment, bounded in what one render may build.

Jinja's sandbox keeps templates away from Python internals but lets them build values of any
size: `{{ 'x' * 20000000 }}` allocates 20 MB, and a loop that doubles a string runs the worker
out of memory. Here every operation that can grow a value is checked *before* it runs, against
the size its result would have: the `*`, `+`, `%` and `**` operators, the `~` concatenation,
the string methods and filters that take a width or join many items, adding to a list or an
object, turning a value into text for output, captured blocks, and the output of the whole
render. Over the limit, the render stops with `TemplateTooLarge` (the render turns it into the
step error `TemplateOutputTooLarge`).

Sizes are estimated in characters (a lower bound of UTF-8 bytes), so nothing much larger than
the limit is ever allocated; the rendered value is measured exactly afterwards.

Time is bounded too: `rendering_until(deadline)` sets a deadline, and the render checks the
clock at every iteration of every `{% for %}` loop (each loop's iterable is wrapped in
`bounded_iter`), every call, attribute or item read and every sized operator. Past the
deadline the render stops with `TemplateTimedOut` (the step error `TemplateTimeout`). Nothing
else in a template repeats: without loops, a render runs a fixed number of operations, each on
values the size bounds keep small (`range` stops at 100,000 items in Jinja's sandbox), so
checking there stops a render within a few milliseconds of its deadline, with no tracing hook.
The deadline lives in a context variable: concurrent renders in threads keep their own.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import StrictUndefined, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import do_center, do_format, do_indent, do_replace, sync_do_join
from jinja2.nodes import Call, Concat, EnvironmentAttribute, EvalContext, For
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, modifies_known_mutable
from jinja2.utils import Namespace

from .runtime_limits import TEMPLATE_OUTPUT_MAX_BYTES

# The largest integer a template may compute (about 4,200 decimal digits: Python refuses to
# print longer ones anyway).
MAX_INTEGER_BITS = 14_000
_END = object()
_GROWN = "aiwf_grown_chars"  # attribute of a render's Jinja context
_PERCENT_SPEC = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_FIELD = re.compile(r"\{[^{}]*\}")
_DIGITS = re.compile(r"\d+")


_CLOCK_EVERY = 16  # loop iterations between two looks at the clock
_DEADLINE: ContextVar[float] = ContextVar("aiwf_template_deadline", default=math.inf)


class TemplateTooLarge(Exception):
    """What a template is about to build is over the limit; raised before it is built."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class TemplateTimedOut(Exception):
    """The render ran past its deadline; raised at the next loop iteration, call or operator."""


@contextmanager
def rendering_until(deadline: float) -> Iterator[None]:
    """Renders inside the block stop with TemplateTimedOut past `deadline` (a `time.monotonic()` value).

    A block inside another keeps the earlier deadline: one step's templates share one budget."""
    token = _DEADLINE.set(min(deadline, _DEADLINE.get()))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def deadline_active() -> bool:
    """Whether a render deadline is set for the current thread (or task)."""
    return _DEADLINE.get() != math.inf


def _check_deadline() -> None:
    if time.monotonic() > _DEADLINE.get():
        raise TemplateTimedOut("the render ran past its time limit")


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """A `{% for %}` loop's items, with the deadline checked before the first and every
    `_CLOCK_EVERY`th one (what a loop body does between checks is checked on its own: calls,
    reads, operators and inner loops)."""
    deadline = _DEADLINE.get()
    monotonic = time.monotonic
    for index, item in enumerate(iterable):
        if not index % _CLOCK_EVERY and monotonic() > deadline:
            raise TemplateTimedOut("the render ran past its time limit")
        yield item


def estimated_size(value: Any, limit: int = TEMPLATE_OUTPUT_MAX_BYTES) -> int:
    """At least the characters `value` takes as text; the walk stops once it passes `limit`.

    Walks containers with a stack of iterators, so a huge or self-referencing list costs no
    more than `limit` steps.
    """
    total = 0
    pending: list[Iterable[Any]] = [iter((value,))]
    while pending:
        item = next(pending[-1], _END)  # type: ignore[call-overload]
        if item is _END:
            pending.pop()
            continue
        if isinstance(item, str):
            total += len(item) + 2
        elif item is None or isinstance(item, bool | float):
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 4 + 2
        elif isinstance(item, Namespace):
            total += 12
            pending.append(iter((object.__getattribute__(item, "_Namespace__attrs"),)))
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            pending.append(itertools.chain.from_iterable(item.items()))
        elif isinstance(item, list | tuple | set | frozenset | range):
            total += 2 + 2 * len(item)
            pending.append(iter(item))
        else:
            total += 16
        if total > limit:
            return total
    return total


def _require(what: str, size: int) -> None:
    if size > TEMPLATE_OUTPUT_MAX_BYTES:
        raise TemplateTooLarge(
            f"{what} would be {size} characters or more, over the limit of {TEMPLATE_OUTPUT_MAX_BYTES} bytes"
        )


def _formatted_size(template: str, args: Any) -> int:
    """An upper estimate of `template % args` or `template.format(*args)`: the text, every
    width or precision it names (a `*` takes its width from an integer argument) and the arguments."""
    widths = 0
    star = False
    for match in _PERCENT_SPEC.finditer(template):
        for part in match.groups():
            if part == "*":
                star = True
            elif part:
                widths += int(part)
    for field in _BRACE_FIELD.findall(template):
        widths += sum(int(digits) for digits in _DIGITS.findall(field.partition(":")[2]))
    if star:
        values = args if isinstance(args, tuple | list) else (args,)
        widths += sum(abs(v) for v in values if isinstance(v, int) and not isinstance(v, bool))
    return len(template) + widths + estimated_size(args)


def _product_size(left: Any, right: Any) -> int | None:
    """Length of `left * right` for a sequence times an integer (either way round), else None."""
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(times, int):
            return len(sequence) * max(times, 0)
    return None


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        size = _product_size(left, right)
        if size is not None:
            _require("the repeated value", size)
        elif isinstance(left, int) and isinstance(right, int):
            _require_integer_bits(left.bit_length() + right.bit_length())
    elif operator == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _require("the joined value", len(left) + len(right))
    elif operator == "%":
        if isinstance(left, str):
            _require("the formatted text", _formatted_size(left, right))
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        _require_integer_bits(right * left.bit_length())


def _require_integer_bits(bits: int) -> None:
    if bits > MAX_INTEGER_BITS:
        raise TemplateTooLarge(
            f"the number would have about {int(bits * 0.30103)} digits, "
            f"over the limit of {int(MAX_INTEGER_BITS * 0.30103)} digits"
        )


def _checked_call(context: Context, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a method that can grow a string or a container; the (maybe materialized) args.

    What a render adds to lists, objects and sets (`append`, `extend`, `update`, ...) is summed
    on its Jinja context, so a loop that keeps adding cannot pass the limit either.
    """
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    name = getattr(target, "__name__", "")
    if isinstance(owner, str):
        if name in ("ljust", "rjust", "center", "zfill") and args and isinstance(args[0], int):
            _require("the padded text", max(args[0], len(owner)))
        elif name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(tab, int):
                _require("the expanded text", len(owner) + owner.count("\t") * max(tab, 0))
        elif name == "join" and args:
            items = list(args[0])
            _require("the joined text", estimated_size(items) + len(owner) * max(len(items) - 1, 0))
            args = (items, *args[1:])
        elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
            _require("the replaced text", _replaced_size(owner, args[0], args[1]))
        elif name in ("format", "format_map"):
            _require("the formatted text", _formatted_size(owner, (args, kwargs)))
    elif owner is not None and modifies_known_mutable(owner, name):
        grown = getattr(context, _GROWN, 0) + estimated_size((args, kwargs))
        _require("what the template added to lists and objects", grown)
        setattr(context, _GROWN, grown)
    return args


def _replaced_size(text: str, old: str, new: str) -> int:
    occurrences = len(text) + 1 if not old else text.count(old)
    return len(text) + occurrences * max(len(new) - len(old), 0)


def _bounded_join(values: Iterable[Any]) -> str:
    """`a ~ b`: each part becomes text only after its size is checked."""
    parts = list(values)
    _require("the joined text", sum(estimated_size(part) for part in parts))
    return "".join(map(str, parts))


def _bounded_concat(chunks: Iterable[str]) -> str:
    """The render's output (and every captured block): stops as soon as it passes the limit."""
    kept: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        _require("the rendered text", size)
        kept.append(chunk)
    return "".join(kept)


def _bounded_finalize(value: Any) -> Any:
    """Every `{{ value }}` printed: checked before it becomes text."""
    _require("the printed value", estimated_size(value))
    return value


class _BoundedBuffer(list[str]):
    """The output buffer of a captured block (`{% set %}...{% endset %}`, a macro, a filter block)."""

    __slots__ = ("_size",)

    def __init__(self) -> None:
        super().__init__()
        self._size = 0

    def _grow(self, size: int) -> None:
        self._size += size
        _require("the captured text", self._size)

    def append(self, chunk: str) -> None:
        self._grow(len(chunk))
        super().append(chunk)

    def extend(self, chunks: Iterable[str]) -> None:
        chunks = tuple(chunks)
        self._grow(sum(map(len, chunks)))
        super().extend(chunks)


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles `~` to the environment's bounded join, block buffers to bounded lists, and each
    `{% for %}` loop's iterable to one whose every step checks the render's deadline."""

    def visit_For(self, node: For, frame: Frame) -> None:
        bounded = Call(EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None, lineno=node.iter.lineno)
        super().visit_For(
            For(node.target, bounded, node.body, node.else_, node.test, node.recursive, lineno=node.lineno), frame
        )

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    @optimizeconst
    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _sized_filter(what: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that turns its whole input into text: checked first (a filter without pass_* arguments)."""
    assert not hasattr(original, "jinja_pass_arg"), original

    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        _require(what, estimated_size(value))
        return original(value, *args, **kwargs)

    return checked


def _center(value: Any, width: int = 80) -> str:
    _require("the centered text", max(width, 0) + estimated_size(value))
    return do_center(value, width)


def _indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    _require("the text", estimated_size(value))
    text = str(value)
    prefix = len(width) if isinstance(width, str) else max(width, 0)
    _require("the indented text", len(text) + prefix * (text.count("\n") + 1))
    return do_indent(text, width, first, blank)


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    _require("the joined text", estimated_size(items) + len(str(d)) * max(len(items) - 1, 0))
    return sync_do_join(eval_ctx, items, d, attribute)


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    _require("the text", estimated_size(s))
    _require("the replaced text", _replaced_size(str(s), str(old), str(new)))
    return do_replace(eval_ctx, s, old, new, count)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    _require("the formatted text", _formatted_size(str(value), kwargs or args))
    return do_format(value, *args, **kwargs)


def _tojson(value: Any) -> str:
    _require("the JSON text", estimated_size(value))
    return json.dumps(value, separators=(",", ":"), default=str)


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox, with the flow-template conventions and the size bounds of this module.

    `input.items` means the key `items` of a JSON object, never the dict method.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator
    concat = staticmethod(_bounded_concat)  # type: ignore[assignment]
    bounded_join = staticmethod(_bounded_join)
    bounded_iter = staticmethod(_bounded_iter)
    bounded_buffer = _BoundedBuffer

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_bounded_finalize
        )
        self.filters.update(
            {
                "tojson": _tojson,
                "center": _center,
                "indent": _indent,
                "join": _join,
                "replace": _replace,
                "format": _format,
                "string": _sized_filter("the text", self.filters["string"]),
                "pprint": _sized_filter("the text", self.filters["pprint"]),
                "urlencode": _sized_filter("the text", self.filters["urlencode"]),
            }
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        _check_deadline()
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _check_deadline()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_deadline()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        _check_deadline()
        args = _checked_call(context, obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)
