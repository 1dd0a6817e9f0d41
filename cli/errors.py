"""Exit codes a script can rely on, and the one error the commands raise."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    TASK_FAILED = 1  # --wait: the task ended FAILED, TIMED_OUT or ABORTED
    BAD_REQUEST = 2  # the API refused the request (400), or bad arguments
    NOT_FOUND = 3  # 404
    CONFLICT = 4  # 409 / 410: not waiting, token used, wait expired
    FORBIDDEN = 5  # 401 / 403: API key or resume token refused
    UNAVAILABLE = 6  # cannot reach the API, 5xx, or a wait that timed out
    CONFIG = 7  # no stack outputs to talk to


_BY_STATUS = {400: ExitCode.BAD_REQUEST, 401: ExitCode.FORBIDDEN, 403: ExitCode.FORBIDDEN, 404: ExitCode.NOT_FOUND}


def exit_code_for_status(status: int) -> ExitCode:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status in (409, 410):
        return ExitCode.CONFLICT
    if 400 <= status < 500:
        return ExitCode.BAD_REQUEST
    return ExitCode.UNAVAILABLE


class CliError(Exception):
    def __init__(self, message: str, code: ExitCode, details: list | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or []
