"""What the task API answers, as typed models (snake_case attributes, the API's camelCase on the wire).

Every model keeps fields it does not know (a newer API may add some), and `to_json()` gives back
exactly the JSON the API sent: the CLI prints that with `--json`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

FINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
"""A task in one of these statuses has ended (a redrive may start it again)."""


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel, frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON object the API answered, unchanged."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class TaskError(ApiModel):
    """Why a task (or a branch) failed: the normalized error of the step that failed."""

    error_name: str | None = None
    error_message: str | None = None
    error_details: Any = None
    retryable: bool | None = None
    step_id: str | None = None
    branch_id: str | None = None


class TaskState(ApiModel):
    """A task's state (or one of its parallel branches', with `branch_id`), as GET /tasks/{taskId} answers."""

    task_id: str
    flow_id: str | None = None
    flow_version: int | None = None
    status: str
    seq: int = 0
    current_step: str | None = None
    branch_id: str | None = None
    waiting_for: Any = None
    output: Any = None
    error: TaskError | None = None
    started_at: str | None = None
    updated_at: str | None = None
    redrive_count: int | None = None
    # The tenant the task belongs to (set at start from its caller, never changed).
    tenant_id: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


class FlowVersion(ApiModel):
    """One registered version of a flow: its document, with `flowId`, `version` and `createdAt`."""

    flow_id: str
    version: int
    created_at: str | None = None

    @property
    def document(self) -> dict[str, Any]:
        """The flow document as it was registered."""
        answer = self.to_json()
        return {key: value for key, value in answer.items() if key not in ("flowId", "version", "createdAt")}


class FlowSummary(ApiModel):
    """An item of GET /flows: a flow's latest version and whether it is retired."""

    flow_id: str
    version: int
    retired: bool = False
    updated_at: str | None = None


class Heartbeat(ApiModel):
    """POST /tasks/{taskId}/heartbeat's answer."""

    task_id: str
    heartbeat_at: str


class Page(ApiModel):
    """One page of a list: its items as the API sent them, and the token of the next page."""

    items: list[dict[str, Any]]
    next_token: str | None = None
