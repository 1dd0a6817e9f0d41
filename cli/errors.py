"""Exit codes a script can rely on, the CLI's own error, and how the SDK's errors map to exit codes."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from aiwf_sdk import (
    AiwfError,
    BadRequestError,
    ConflictError,
    FlowValidationError,
    ForbiddenError,
    NotFoundError,
    SignInError,
    StackOutputsError,
)


class ExitCode(IntEnum):
    OK = 0
    TASK_FAILED = 1  # --wait: the task ended FAILED, TIMED_OUT or ABORTED
    BAD_REQUEST = 2  # the API refused the request (400), or bad arguments
    NOT_FOUND = 3  # 404
    CONFLICT = 4  # 409 / 410: not waiting, token used, wait expired
    FORBIDDEN = 5  # 401 / 403: API key, ID token or resume token refused; a sign-in refused
    UNAVAILABLE = 6  # cannot reach the API, 5xx, or a wait that timed out
    CONFIG = 7  # no stack outputs to talk to


# The first class an error is an instance of decides (GoneError is a ConflictError); anything else
# (UnavailableError, ServerError, TaskTimeoutError) is UNAVAILABLE.
_BY_CLASS: tuple[tuple[type[AiwfError], ExitCode], ...] = (
    (StackOutputsError, ExitCode.CONFIG),
    (SignInError, ExitCode.FORBIDDEN),
    (FlowValidationError, ExitCode.BAD_REQUEST),
    (BadRequestError, ExitCode.BAD_REQUEST),
    (ForbiddenError, ExitCode.FORBIDDEN),
    (NotFoundError, ExitCode.NOT_FOUND),
    (ConflictError, ExitCode.CONFLICT),
)


def exit_code_for(error: AiwfError) -> ExitCode:
    return next((code for cls, code in _BY_CLASS if isinstance(error, cls)), ExitCode.UNAVAILABLE)


def message_for(error: AiwfError) -> str:
    """One line: the API's `CODE: message` (with a hint for a refused credential), or the SDK's message."""
    if isinstance(error, StackOutputsError) or error.status is None:
        return error.message
    hint = " (check the API key, or who is signed in: aiwf whoami)" if error.code in ("FORBIDDEN", "HTTP_403") else ""
    return f"{error.code}: {error.message}{hint}"


class CliError(Exception):
    def __init__(self, message: str, code: ExitCode, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or []

    @classmethod
    def from_sdk(cls, error: AiwfError) -> CliError:
        return cls(message_for(error), exit_code_for(error), error.details)
