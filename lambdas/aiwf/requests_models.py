"""Request bodies of the task API, validated by pydantic into 400s that list every problem."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FLOW_ID_PATTERN = r"^[a-z0-9-]{1,64}$"
STATUSES = ("PENDING", "RUNNING", "WAITING", "POLLING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class StartTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flowId: str = Field(pattern=FLOW_ID_PATTERN)
    input: Any = Field(default_factory=dict)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,80}$")


def error_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"path": "/" + "/".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors(include_url=False)
    ]
