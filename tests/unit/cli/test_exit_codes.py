"""The CLI's exit codes come from the SDK's exception classes (cli/errors.py)."""

from __future__ import annotations

import pytest

from aiwf_sdk import (
    BadRequestError,
    ConflictError,
    FlowValidationError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    ServerError,
    StackOutputsError,
    TaskTimeoutError,
    UnavailableError,
)
from cli.errors import CliError, ExitCode


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (BadRequestError("INVALID_PARAMETER", "bad", status=400), ExitCode.BAD_REQUEST, "INVALID_PARAMETER: bad"),
        (
            ForbiddenError("FORBIDDEN", "no", status=403),
            ExitCode.FORBIDDEN,
            "FORBIDDEN: no (check the API key, or who is signed in: aiwf whoami)",
        ),
        (ForbiddenError("WRONG_TOKEN", "no", status=403), ExitCode.FORBIDDEN, "WRONG_TOKEN: no"),
        (NotFoundError("TASK_NOT_FOUND", "none", status=404), ExitCode.NOT_FOUND, "TASK_NOT_FOUND: none"),
        (ConflictError("ALREADY_FINAL", "done", status=409), ExitCode.CONFLICT, "ALREADY_FINAL: done"),
        (GoneError("WAIT_EXPIRED", "late", status=410), ExitCode.CONFLICT, "WAIT_EXPIRED: late"),
        (ServerError("HTTP_502", "Bad Gateway", status=502), ExitCode.UNAVAILABLE, "HTTP_502: Bad Gateway"),
        (UnavailableError("UNAVAILABLE", "cannot reach"), ExitCode.UNAVAILABLE, "cannot reach"),
        (TaskTimeoutError("task t is still WAITING after 2 s", None), ExitCode.UNAVAILABLE, "still WAITING"),
        (StackOutputsError("start the local stack with `make dev`"), ExitCode.CONFIG, "make dev"),
        (
            FlowValidationError("f", [{"step": "Llm('x')", "path": "/", "message": "m"}]),
            ExitCode.BAD_REQUEST,
            "Llm('x')",
        ),
    ],
)
def test_every_sdk_error_has_its_exit_code_and_one_line(error, code, message):
    cli_error = CliError.from_sdk(error)
    assert cli_error.code == code
    assert message in cli_error.message
