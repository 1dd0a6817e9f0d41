"""aiwf SDK: flows as Python objects, and a typed client of the task API (the `aiwf` CLI is built on it).

from aiwf_sdk import Client, Flow, Transform, Succeed

flow = Flow("hello", [Transform("greet", value={"greeting": "Hello, {{ input.name }}!"}, result_path="doc"),
                      Succeed("done", output_path="doc")])
client = Client.from_outputs(".local/outputs.json")
client.flows.deploy(flow)
print(client.tasks.run("hello", {"name": "Ada"}).output)
"""

from aiwf_sdk.client import Client, Deployment, FlowsApi, TasksApi
from aiwf_sdk.errors import (
    AiwfError,
    ApiError,
    BadRequestError,
    ConflictError,
    FlowValidationError,
    ForbiddenError,
    GoneError,
    NoLocalStackError,
    NotFoundError,
    ServerError,
    StackOutputsError,
    TaskTimeoutError,
    UnavailableError,
)
from aiwf_sdk.flow import Flow
from aiwf_sdk.models import FINAL_STATUSES, FlowSummary, FlowVersion, Heartbeat, TaskError, TaskState
from aiwf_sdk.session import Session, SessionAuth, SignInError, UserPool, sign_in
from aiwf_sdk.steps import (
    UNSET,
    Branch,
    Choice,
    Fail,
    ForEach,
    Http,
    HttpCheck,
    Llm,
    Notify,
    Parallel,
    Poll,
    Retry,
    Step,
    Succeed,
    Task,
    TaskCheck,
    Transform,
    Until,
    WaitForEvent,
    When,
)

__all__ = [
    "FINAL_STATUSES",
    "UNSET",
    "AiwfError",
    "ApiError",
    "BadRequestError",
    "Branch",
    "Choice",
    "Client",
    "ConflictError",
    "Deployment",
    "Fail",
    "Flow",
    "FlowSummary",
    "FlowValidationError",
    "FlowVersion",
    "FlowsApi",
    "ForEach",
    "ForbiddenError",
    "GoneError",
    "Heartbeat",
    "Http",
    "HttpCheck",
    "Llm",
    "NoLocalStackError",
    "NotFoundError",
    "Notify",
    "Parallel",
    "Poll",
    "Retry",
    "ServerError",
    "Session",
    "SessionAuth",
    "SignInError",
    "StackOutputsError",
    "Step",
    "Succeed",
    "Task",
    "TaskCheck",
    "TaskError",
    "TaskState",
    "TaskTimeoutError",
    "TasksApi",
    "Transform",
    "UnavailableError",
    "Until",
    "UserPool",
    "WaitForEvent",
    "When",
    "sign_in",
]
