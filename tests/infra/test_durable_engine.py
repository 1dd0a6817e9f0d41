"""The second engine under the Pulumi mocks: the durable function, its config, its role, its callers."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_stage_config
from infra.durable_engine import CALLER_ACTIONS, EXECUTION_TIMEOUT_SECONDS, OWN_EXECUTION_ACTIONS
from tests.infra.stackmodel import Stack, as_list

HANDLER = "aiwf.handlers.durable.handler"
CALLERS = ("aiwf.handlers.task_api.handler", "aiwf.handlers.graphql.control_handler")


def _lambda_statements(stack: Stack, handler: str) -> list[dict]:
    role = stack.role_by_arn(stack.function(handler).inputs["role"])
    found = []
    for statement in stack.statements_of_role(role):
        actions = as_list(statement["Action"])
        if any(action.startswith("lambda:") for action in actions):
            found.append(statement)
    return found


def test_durable_function_has_durable_config_and_a_published_version(stack: Stack) -> None:
    function = stack.function(HANDLER)
    config = function.inputs["durableConfig"]
    assert config["executionTimeout"] == EXECUTION_TIMEOUT_SECONDS
    assert 1 <= config["retentionPeriod"] <= 90
    assert function.inputs["publish"] is True, "durable executions run a qualified version"
    assert stack.outputs["durableFunctionArn"] == function.outputs["qualifiedArn"]
    assert stack.outputs["durableFunctionArn"].endswith(":1")


def test_only_the_durable_function_is_durable(stack: Stack) -> None:
    durable = [f.inputs["handler"] for f in stack.functions() if f.inputs.get("durableConfig")]
    assert durable == [HANDLER]


def test_durable_role_checkpoints_only_its_own_executions(stack: Stack) -> None:
    function = stack.function(HANDLER)
    statements = _lambda_statements(stack, HANDLER)
    assert len(statements) == 1, statements
    assert sorted(as_list(statements[0]["Action"])) == sorted(OWN_EXECUTION_ACTIONS)
    assert as_list(statements[0]["Resource"]) == [f"{function.outputs['arn']}:*"]
    role = stack.role_by_arn(function.inputs["role"])
    resources = [r for s in stack.statements_of_role(role) for r in as_list(s["Resource"])]
    assert "*" not in resources or stack.setting("tracing"), "a wildcard resource beyond tracing"


@pytest.mark.parametrize("caller", CALLERS)
def test_callers_start_the_version_and_control_only_its_executions(stack: Stack, caller: str) -> None:
    durable = stack.function(HANDLER)
    statements = {s["Sid"]: s for s in _lambda_statements(stack, caller)}
    assert as_list(statements["StartDurableTasks"]["Action"]) == ["lambda:InvokeFunction"]
    assert as_list(statements["StartDurableTasks"]["Resource"]) == [durable.outputs["qualifiedArn"]]
    assert sorted(as_list(statements["ControlDurableTasks"]["Action"])) == sorted(CALLER_ACTIONS)
    assert as_list(statements["ControlDurableTasks"]["Resource"]) == [f"{durable.outputs['arn']}:*"]
    assert set(statements) == {"StartDurableTasks", "ControlDurableTasks"}
    variables = stack.function(caller).inputs["environment"]["variables"]
    assert variables["DURABLE_FUNCTION_ARN"] == durable.outputs["qualifiedArn"]
    assert variables["DEFAULT_ENGINE"] == "stepfunctions"


def test_default_engine_must_be_deployed() -> None:
    with pytest.raises(ConfigError, match="defaultEngine"):
        parse_stage_config("dev", {"durableEngine": "false", "defaultEngine": "durable"})
    with pytest.raises(ConfigError, match="defaultEngine"):
        parse_stage_config("dev", {"defaultEngine": "temporal"})
    config = parse_stage_config("dev", {"defaultEngine": "durable"})
    assert (config.durable_engine, config.default_engine) == (True, "durable")
