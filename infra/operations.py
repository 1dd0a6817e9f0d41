"""The operation catalogue (`schema/operations.json`) as infra reads it: who serves what, with which grants.

Each operation declares its REST binding (served by the task-api function), its GraphQL field and
the function that resolves it, its callers, and the grants its handler needs as symbolic names:
state-store profiles (`infra/state_access.py`) and Step Functions grants (`STATES_GRANTS` below,
the one place they become statements). A function's grants are the union over the operations it
serves, so the two APIs that share operations cannot drift apart. Callers map to REST security
requirements and GraphQL auth directives through the catalogue's `callers` table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pulumi

from .iam import Access, Statement
from .runtime_settings import environment
from .state_access import PROFILES

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
CATALOGUE_PATH = SCHEMA_DIR / "operations.json"
# The function every REST operation proxies to (FunctionArgs.name of the task API's handler).
REST_FUNCTION = "task-api"
# A profile another one includes: a function granted both gets the larger one alone.
SUBSUMED_BY = {"payloads-read": "payloads-write", "read-flows": "register-flows"}


@cache
def catalogue() -> dict[str, Any]:
    return json.loads(CATALOGUE_PATH.read_text())


def _entries(section: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in section.items() if not key.startswith("$")}


def operations() -> dict[str, dict[str, Any]]:
    """Operation id -> its catalogue entry, in the catalogue's order."""
    return _entries(catalogue()["operations"])


def callers() -> dict[str, dict[str, Any]]:
    """Caller kind (e.g. `user`) -> how each API names it (REST security scheme, GraphQL directive)."""
    return _entries(catalogue()["callers"])


def rest_security(operation: dict[str, Any]) -> list[dict[str, list[str]]]:
    """The operation's own OpenAPI `security` (API Gateway ignores a document's root one).

    A REST method has exactly one authorization type, so its callers must share one scheme:
    `{operator}` (IAM), a subset of `{user, key}` (the Lambda authorizer accepts either), or
    `{token}` (none: the body carries the credential). Anything else stops the program at plan
    time rather than deploy a method that quietly admits a caller the catalogue did not name."""
    kinds = operation["callers"]["rest"]
    if not kinds:
        raise ValueError("a REST operation names its callers")
    unknown = set(kinds) - set(callers())
    if unknown:
        raise ValueError(f"unknown REST caller kinds {sorted(unknown)}")
    schemes = {callers()[kind]["rest"] for kind in kinds}
    if len(schemes) != 1:
        raise ValueError(f"REST callers {sorted(kinds)} need different authorization types; a method has one")
    (scheme,) = schemes
    return [] if scheme is None else [{scheme: []}]


def graphql_directives(operation: dict[str, Any]) -> set[str]:
    """The auth directives (without `@`) the operation's GraphQL field carries in the schema."""
    return {callers()[kind]["graphql"] for kind in operation["callers"]["graphql"]}


def graphql_fields(function: str) -> list[tuple[str, str]]:
    """`(type, field)` of every GraphQL field the function named `function` resolves."""
    return [
        (op["graphql"]["type"], op["graphql"]["field"])
        for op in operations().values()
        if op.get("graphql", {}).get("function") == function
    ]


def _bindings(function: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(operation, binding) for every REST or GraphQL binding `function` serves."""
    found = []
    for op in operations().values():
        if function == REST_FUNCTION and "rest" in op:
            found.append((op, op["rest"]))
        if op.get("graphql", {}).get("function") == function:
            found.append((op, op["graphql"]))
    if not found:
        raise ValueError(f"no catalogue operation is served by {function!r}")
    return found


def store_profiles(function: str) -> tuple[str, ...]:
    """The state-store profiles `function` needs, in PROFILES order, the subsumed ones left out."""
    wanted = {name for op, _ in _bindings(function) for name in op.get("store", ())}
    unknown = wanted - set(PROFILES)
    if unknown:
        raise ValueError(f"unknown store profiles in the catalogue: {sorted(unknown)}")
    kept = {name for name in wanted if SUBSUMED_BY.get(name) not in wanted}
    return tuple(name for name in PROFILES if name in kept)


def states_grant_names(function: str) -> tuple[str, ...]:
    """The Step Functions grants `function` needs (an operation's, plus its binding's own), in STATES_GRANTS order."""
    wanted = {
        name for op, binding in _bindings(function) for name in (*op.get("states", ()), *binding.get("states", ()))
    }
    unknown = wanted - set(STATES_GRANTS)
    if unknown:
        raise ValueError(f"unknown Step Functions grants in the catalogue: {sorted(unknown)}")
    return tuple(name for name in STATES_GRANTS if name in wanted)


@dataclass(frozen=True)
class Machines:
    """The state machines a task-handling function may drive."""

    standard: pulumi.Input[str]
    # Quick runs only (POST /tasks with "wait"); None where no served operation runs one.
    express: pulumi.Input[str] | None = None


def executions_of(machine_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """`arn:...:execution:<machine>:*`, every execution of the machine (continuations included)."""
    return pulumi.Output.from_input(machine_arn).apply(
        lambda arn: arn.replace(":stateMachine:", ":execution:", 1) + ":*"
    )


def _express(machines: Machines) -> pulumi.Input[str]:
    if machines.express is None:
        raise ValueError("a quick-run grant needs the Express state machine")
    return machines.express


# Symbolic Step Functions grant -> the access it stands for: the one place these become statements.
STATES_GRANTS: dict[str, Callable[[Machines], Access]] = {
    "start": lambda m: Access(
        environment(state_machine_arn=m.standard),
        (Statement(("states:StartExecution",), (m.standard,), sid="StartTasks"),),
    ),
    "quick-run": lambda m: Access(
        environment(express_state_machine_arn=_express(m)),
        (Statement(("states:StartSyncExecution",), (_express(m),), sid="QuickRuns"),),
    ),
    # Completing a task token: IAM supports no resource-level permission for these actions (the
    # token, not an ARN, names the task), so "*" is the only resource.
    "complete-wait": lambda m: Access(
        {}, (Statement(("states:SendTaskSuccess", "states:SendTaskFailure"), ("*",), sid="ResumeTasks"),)
    ),
    "heartbeat": lambda m: Access({}, (Statement(("states:SendTaskHeartbeat",), ("*",), sid="HeartbeatTasks"),)),
    # Cancel stops the task's execution: only executions of the orchestrator.
    "stop": lambda m: Access(
        {}, (Statement(("states:StopExecution",), (executions_of(m.standard),), sid="CancelTasks"),)
    ),
}


def states_access(function: str, machines: Machines) -> Access:
    """The environment and statements of the Step Functions grants `function` needs."""
    parts = [STATES_GRANTS[name](machines) for name in states_grant_names(function)]
    environment = {key: value for part in parts for key, value in part.environment.items()}
    return Access(environment=environment, statements=tuple(s for part in parts for s in part.statements))


def path_parameters(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)
