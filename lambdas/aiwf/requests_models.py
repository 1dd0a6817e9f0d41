"""Request bodies of the task API, validated by pydantic into 400s that list every problem."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FLOW_ID_PATTERN = r"^[a-z0-9-]{1,64}$"
MAX_WAIT_SECONDS = 25
STATUSES = ("PENDING", "RUNNING", "WAITING", "POLLING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class StartTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flowId: str = Field(pattern=FLOW_ID_PATTERN)
    # An object, so the flow's templates and resultPaths always have a mapping to read from.
    input: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    # A quick run: answer when the task ends or after this many seconds (API Gateway's own
    # integration timeout is 29 s, so 25 leaves room for the start and the answer).
    wait: int | None = Field(default=None, ge=1, le=MAX_WAIT_SECONDS, strict=True)


class ResumeError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    errorName: str = Field(min_length=1, max_length=256)
    errorMessage: str | None = Field(default=None, max_length=8192)
    errorDetails: Any = None


class ResumeTask(BaseModel):
    """`PUT /tasks/{taskId}`: the token a wait handed out, and the outcome of the awaited event."""

    model_config = ConfigDict(extra="forbid")

    resumeToken: str = Field(min_length=1, max_length=4096)
    status: Literal["SUCCEEDED", "FAILED"]
    output: Any = None
    error: ResumeError | None = None


def error_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"path": "/" + "/".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors(include_url=False)
    ]
