"""`matches` patterns of `choice` conditions and `poll` checks: RE2 syntax, matched in linear time.

A flow is written by users, so a pattern must not be able to stall a worker: Python's `re`
backtracks, and `^(a+)+$` on 30 characters runs for minutes. RE2 (Google's engine, through the
`google-re2` binding) matches in time linear in the text, and refuses what it cannot match that
way (backreferences, lookaround), so such a pattern is refused when the flow is registered.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the flow author's error, not a log line of ours


class PatternError(ValueError):
    """The pattern is not RE2 syntax; the message says why in RE2's words."""


@lru_cache(maxsize=256)
def compiled(pattern: str) -> Any:
    """The compiled RE2 pattern (cached: a choice in a loop compiles it once); PatternError if refused."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", errors="replace")
        raise PatternError(str(reason)) from None


def pattern_error(pattern: str) -> str | None:
    """Why `pattern` is refused (RE2's reason), or None when it is a valid RE2 pattern."""
    try:
        compiled(pattern)
    except PatternError as exc:
        return str(exc)
    return None


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` is found anywhere in `text` (as `re.search`), in time linear in `text`."""
    return compiled(pattern).search(text) is not None
