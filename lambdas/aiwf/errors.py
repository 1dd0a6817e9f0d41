"""Errors with a meaning for clients, and the one normalized error shape.

API errors carry their HTTP status and a stable code, so handlers never guess.
Step errors carry what the normalized error needs (name, retryable, details).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, details: list[Any] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        if code:
            self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status = 400
    code = "BAD_REQUEST"


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"


class Conflict(ApiError):
    status = 409
    code = "CONFLICT"


class Forbidden(ApiError):
    status = 403
    code = "FORBIDDEN"


class Gone(ApiError):
    status = 410
    code = "GONE"


class StepError(Exception):
    """A step failed; becomes the task's normalized error unless the flow catches it."""

    def __init__(
        self,
        error_name: str,
        message: str,
        details: Any = None,
        retryable: bool = False,
        branch_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.message = message
        self.details = details
        self.retryable = retryable
        self.branch_id = branch_id


class ConcurrentUpdate(Exception):
    """Another writer changed the task since we read it (the conditional write on seq failed)."""


def normalized_error(
    error_name: str,
    error_message: str,
    *,
    details: Any = None,
    retryable: bool = False,
    step_id: str | None = None,
    branch_id: str | None = None,
) -> dict[str, Any]:
    """The one normalized error shape (docs/flows.md), whatever failed."""
    return {
        "errorName": error_name,
        "errorMessage": error_message,
        "errorDetails": details,
        "retryable": retryable,
        "stepId": step_id,
        "branchId": branch_id,
    }
