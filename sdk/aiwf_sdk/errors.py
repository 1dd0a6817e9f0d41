"""Typed exceptions: every one carries the API's `code`, `message` and `details` (or the SDK's own).

The task API answers every error as `{"error": {"code", "message", "details"}}` with a 4xx status
for anything the caller can fix; the class tells a script what kind of failure it was without
parsing text, and `code` says exactly which (`TASK_NOT_FOUND`, `WRONG_TOKEN`, ...).
"""

from __future__ import annotations

from typing import Any


class AiwfError(Exception):
    """Base of every SDK error."""

    def __init__(self, code: str, message: str, details: list[Any] | None = None, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: list[Any] = list(details or [])
        self.status = status


class ApiError(AiwfError):
    """The task API answered with an error (`status` is the HTTP status)."""


class BadRequestError(ApiError):
    """400 (or another 4xx without a class of its own): the request was refused as it is."""


class ForbiddenError(ApiError):
    """401 / 403: the API key (or a resume token) was refused."""


class NotFoundError(ApiError):
    """404: no such task, flow or path."""


class ConflictError(ApiError):
    """409: the task or flow is not in a state that allows this (already final, token used, retired)."""


class GoneError(ConflictError):
    """410: the wait this token belonged to has expired."""


class ServerError(ApiError):
    """5xx: the API failed; the request may be sent again."""


class UnavailableError(AiwfError):
    """The API could not be reached (connection refused, timed out, dropped)."""


class NoLocalStackError(UnavailableError):
    """Nothing listens at a loopback API address: the local stack is not running (no retry helps)."""


class TaskTimeoutError(AiwfError):
    """`tasks.run` / `tasks.wait` gave up before the task ended; `state` is the last state seen."""

    def __init__(self, message: str, state: Any) -> None:
        super().__init__("TIMEOUT", message)
        self.state = state


class StackOutputsError(AiwfError):
    """No stack outputs to talk to: the outputs file is missing, or `pulumi stack output` failed."""

    def __init__(self, message: str) -> None:
        super().__init__("NO_STACK_OUTPUTS", message)


class FlowValidationError(AiwfError, ValueError):
    """A flow built in Python is not a valid flow document; `details` name the Python step of each problem."""

    def __init__(self, flow_id: str, problems: list[dict[str, str]]) -> None:
        lines = "".join(f"\n  {p['step']}: {p['message']}" for p in problems)
        super().__init__("INVALID_FLOW", f"flow {flow_id!r} is not valid:{lines}", problems)


def error_for_status(status: int, code: str, message: str, details: list[Any] | None = None) -> ApiError:
    """The exception class an HTTP error status maps to."""
    cls: type[ApiError]
    if status in (401, 403):
        cls = ForbiddenError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = ConflictError
    elif status == 410:
        cls = GoneError
    elif status >= 500:
        cls = ServerError
    else:
        cls = BadRequestError
    return cls(code, message, details, status=status)
