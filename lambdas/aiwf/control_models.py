"""Request bodies of the task-control routes (cancel, heartbeat), validated by pydantic into 400s."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CancelTask(BaseModel):
    """`POST /tasks/{taskId}/cancel`: the reason becomes the Cancelled error's message."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=8192)


class HeartbeatTask(BaseModel):
    """`POST /tasks/{taskId}/heartbeat`: the token the wait's notify URL received."""

    model_config = ConfigDict(extra="forbid")

    resumeToken: str = Field(min_length=1, max_length=4096)
