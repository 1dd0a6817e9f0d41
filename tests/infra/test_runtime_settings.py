"""infra/runtime_settings.py: components name the functions' variables from schema/settings.json."""

from __future__ import annotations

import pytest

from infra.runtime_settings import declared, default, environment
from tests.infra.stackmodel import Stack


def test_values_are_written_as_the_runtime_parses_them() -> None:
    assert environment(
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:m",
        egress_allow_loopback=True,
        egress_deny_hosts=("a.example", "10.0.0.0/8"),
        replay_backoff_seconds=30,
        llm_endpoint=None,
    ) == {
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        "EGRESS_ALLOW_LOOPBACK": "true",
        "EGRESS_DENY_HOSTS": "a.example,10.0.0.0/8",
        "REPLAY_BACKOFF_SECONDS": "30",
    }


def test_an_undeclared_setting_stops_the_program() -> None:
    with pytest.raises(ValueError, match="'state_machin_arn' is not a runtime setting"):
        environment(state_machin_arn="x")
    with pytest.raises(ValueError, match="not a runtime setting"):
        default("nothing")


def test_a_value_of_the_wrong_type_stops_the_program() -> None:
    with pytest.raises(TypeError):
        environment(replay_backoff_seconds=True)


def test_every_function_variable_is_declared(stack: Stack) -> None:
    """What the program deploys is what the runtime declares (settings or the store's names)."""
    from infra.state_access import store_schema

    store = store_schema()
    known = {setting["environment"] for setting in declared().values()}
    known |= {table["environment"] for table in store["tables"].values()}
    known |= {store["payloads"]["environment"], store["payloads"]["thresholdEnvironment"]}
    for function in stack.functions():
        variables = set(function.inputs["environment"]["variables"])
        assert variables <= known, f"{function.name}: {sorted(variables - known)} declared nowhere"
