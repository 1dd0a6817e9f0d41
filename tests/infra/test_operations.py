"""Each function's grants are the union of what the catalogue operations it serves need, so the two
APIs that share operations cannot drift apart, and every symbolic grant has one meaning."""

from __future__ import annotations

from infra.operations import (
    REST_FUNCTION,
    STATES_GRANTS,
    callers,
    operations,
    states_grant_names,
    store_profiles,
)
from infra.state_access import PROFILES

FUNCTIONS = (REST_FUNCTION, "graphql-resolver", "graphql-control")


def test_every_operation_names_known_grants_callers_and_functions() -> None:
    for op_id, op in operations().items():
        assert set(op.get("store", ())) <= set(PROFILES), op_id
        states = {*op.get("states", ()), *op.get("rest", {}).get("states", ())}
        assert states <= set(STATES_GRANTS), op_id
        for api, kinds in op["callers"].items():
            assert api in op and kinds and set(kinds) <= set(callers()), op_id
            assert all(api in callers()[kind] for kind in kinds), f"{op_id}: {api} cannot express {kinds}"
        if "graphql" in op:
            assert op["graphql"]["function"] in FUNCTIONS, op_id


def test_the_task_api_and_graphql_control_get_the_same_store_access() -> None:
    expected = ("read", "write-tasks", "record-execution", "register-flows", "list-flows", "payloads-write")
    assert store_profiles(REST_FUNCTION) == expected
    assert store_profiles("graphql-control") == expected
    assert store_profiles("graphql-resolver") == ("read", "payloads-read")


def test_step_functions_grants_follow_the_operations_served() -> None:
    """Quick runs and heartbeats are REST only; the control plane starts, completes waits and stops."""
    assert states_grant_names(REST_FUNCTION) == ("start", "quick-run", "complete-wait", "heartbeat", "stop")
    assert states_grant_names("graphql-control") == ("start", "complete-wait", "stop")
    assert states_grant_names("graphql-resolver") == ()
