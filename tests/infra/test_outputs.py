"""Stack outputs (`pulumi.export` in `__main__.py`; what `.local/outputs.json` and `pulumi stack
output` show, and what the README's walkthroughs, `bin/aiwf` and the SDK read): an external
contract, the same names for every stage."""

from __future__ import annotations

import re

from tests.infra.stackmodel import API_STAGE, REST_API, STATE_MACHINE, Stack

REQUIRED_OUTPUTS = ("stage", "taskApiUrl", "apiKey", "stateMachineArn", "userPoolId", "userPoolClientId")


def test_contract_outputs_are_exported(stack: Stack) -> None:
    """Clients and the end-to-end tests read these names from `pulumi stack output --json`."""
    missing = [name for name in REQUIRED_OUTPUTS if name not in stack.outputs]
    assert not missing, f"{stack.stage}: missing stack outputs {missing}"
    empty = [name for name in REQUIRED_OUTPUTS if not stack.outputs[name]]
    assert not empty, f"{stack.stage}: empty stack outputs {empty}"


def test_stage_output_names_the_stack(stack: Stack) -> None:
    """The local stack and the cloud both say which stage config they run."""
    assert stack.outputs["stage"] == stack.stage


def test_task_api_url_is_the_stage_base_url_without_trailing_slash(stack: Stack) -> None:
    """Clients append `/tasks` etc. to it: a trailing slash would give `//tasks`."""
    url = stack.outputs["taskApiUrl"]
    api = stack.one(REST_API)
    api_stage = stack.one(API_STAGE)
    region = stack.setting("aws:region")
    assert not url.endswith("/"), url
    assert api_stage.inputs["restApi"] == api.id
    assert api_stage.inputs["stageName"] == stack.stage
    assert url == f"https://{api.id}.execute-api.{region}.amazonaws.com/{stack.stage}"


def test_api_key_output_is_the_key_value_and_secret(stack: Stack) -> None:
    """The key is a credential: it must be exported as a secret (encrypted in the state)."""
    key = stack.one("aws:apigateway/apiKey:ApiKey")
    assert stack.outputs["apiKey"] == key.outputs["value"]
    assert "apiKey" in stack.secret_outputs


def test_state_machine_arn_output_is_the_orchestrator(stack: Stack) -> None:
    machine = stack.one(STATE_MACHINE, "orchestrator")
    assert stack.outputs["stateMachineArn"] == machine.outputs["arn"]
    assert re.fullmatch(r"arn:aws:states:[a-z0-9-]+:\d{12}:stateMachine:[\w-]+", stack.outputs["stateMachineArn"])
