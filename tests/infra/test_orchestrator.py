"""The deployed state machine: valid ASL (checked by asl-validator), built by the pure builder."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from infra.orchestrator_asl import build_orchestrator_definition
from tests.infra.stackmodel import REPO_ROOT, STATE_MACHINE, Stack

VALIDATOR_SCRIPT = REPO_ROOT / "tests" / "validators" / "validate-asl.js"
# asl-validator 4.0.0 finds Parallel branches, Map iterators and nested state machines with the
# JSONPath queries `$..Branches`, `$..Iterator` and `$..States`, which also match a *state* of that
# name (the DESIGN's Map state is called "Branches") and then crash on it. Such states are renamed,
# with every transition to them, before validation; the definition's meaning is unchanged.
VALIDATOR_RESERVED_NAMES = ("Branches", "Iterator", "States")
TRANSITION_FIELDS = ("StartAt", "Next", "Default")
LAMBDA_SERVICE_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"}


def rename_states(node: Any, renames: dict[str, str]) -> Any:
    """A copy of an ASL document with states renamed in every `States` map and every transition."""
    if isinstance(node, list):
        return [rename_states(item, renames) for item in node]
    if not isinstance(node, dict):
        return node
    renamed: dict[str, Any] = {}
    for key, value in node.items():
        if key == "States" and isinstance(value, dict):
            renamed[key] = {renames.get(name, name): rename_states(state, renames) for name, state in value.items()}
        elif key in TRANSITION_FIELDS and isinstance(value, str):
            renamed[key] = renames.get(value, value)
        else:
            renamed[key] = rename_states(value, renames)
    return renamed


def _state_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "States" and isinstance(value, dict):
                names |= set(value)
            names |= _state_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= _state_names(item)
    return names


def for_validator(definition: dict[str, Any]) -> dict[str, Any]:
    names = _state_names(definition)
    renames = {}
    for reserved in VALIDATOR_RESERVED_NAMES:
        if reserved in names:
            candidate = f"{reserved}State"
            while candidate in names:
                candidate += "_"
            renames[reserved] = candidate
    return rename_states(definition, renames)


def validate_asl(definition: dict[str, Any]) -> dict[str, Any]:
    """asl-validator's verdict `{isValid, errors}`; fails (never skips) when the tool is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20+, then run `make install`")
    if not (REPO_ROOT / "node_modules" / "asl-validator" / "package.json").is_file():
        pytest.fail("node_modules/asl-validator is missing: run `make install` (npm ci) at the repo root")
    result = subprocess.run(
        [node, str(VALIDATOR_SCRIPT)],
        input=json.dumps(definition),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    if result.returncode not in (0, 1):
        pytest.fail(f"asl-validator could not run (exit {result.returncode}): {result.stderr[-3000:]}")
    return json.loads(result.stdout)


def _definition(stack: Stack) -> dict[str, Any]:
    return json.loads(stack.one(STATE_MACHINE, "orchestrator").inputs["definition"])


def test_definition_is_valid_asl(stack: Stack) -> None:
    """Step Functions rejects an invalid definition only at deploy time; asl-validator catches it now."""
    verdict = validate_asl(for_validator(_definition(stack)))
    assert verdict["isValid"], json.dumps(verdict["errors"], indent=2)


def test_renaming_for_the_validator_keeps_every_transition() -> None:
    """The workaround above must not hide a dangling transition or drop a state."""
    definition = {
        "StartAt": "Branches",
        "States": {
            "Branches": {"Type": "Pass", "Next": "Route"},
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.a", "IsPresent": True, "Next": "Branches"}],
                "Default": "Missing",
            },
        },
    }
    renamed = for_validator(definition)
    assert renamed["StartAt"] == "BranchesState"
    assert set(renamed["States"]) == {"BranchesState", "Route"}
    assert renamed["States"]["Route"]["Choices"][0]["Next"] == "BranchesState"
    verdict = validate_asl(renamed)
    assert not verdict["isValid"] and "Missing" in json.dumps(verdict["errors"])


def test_validator_rejects_a_broken_definition() -> None:
    """Guards the test above: the validator really runs and reports a dangling transition."""
    broken = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Missing"}}}
    verdict = validate_asl(broken)
    assert not verdict["isValid"]
    assert "MISSING_TRANSITION_TARGET" in json.dumps(verdict["errors"])


def test_deployed_definition_is_the_pure_builders(stack: Stack) -> None:
    """The definition deployed is the one unit-tested and executed locally, for this stage's ARNs."""
    functions = {f.inputs["handler"]: f.outputs["arn"] for f in stack.functions()}
    expected = build_orchestrator_definition(
        functions["aiwf.handlers.orchestrator.process"], functions["aiwf.handlers.orchestrator.finalize"]
    )
    assert _definition(stack) == expected


def test_every_lambda_task_retries_service_errors(stack: Stack) -> None:
    """Transient Lambda service errors must be retried with backoff, not fail the task."""
    tasks = {name: s for name, s in _definition(stack)["States"].items() if s["Type"] == "Task"}
    assert tasks
    for name, state in tasks.items():
        retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
        assert retried >= LAMBDA_SERVICE_ERRORS, f"{name} does not retry {sorted(LAMBDA_SERVICE_ERRORS - retried)}"
        assert all(retry.get("BackoffRate", 1) > 1 for retry in state["Retry"]), name


def test_every_lambda_task_retries_an_invocation_that_died_before_normalizing_it(stack: Stack) -> None:
    """A timed-out or killed invocation (or one that lost the seq race) runs again, bounded, with
    backoff, including inside parallel branches; only then does the error chain see it."""
    faults = {"Sandbox.Timedout", "Lambda.Unknown", "Runtime.ExitError", "ConcurrentUpdate"}

    def tasks(states: dict) -> dict:
        found = {}
        for name, state in states.items():
            if state["Type"] == "Task":
                found[name] = state
            if state["Type"] == "Map":
                found |= tasks(state["ItemProcessor"]["States"])
        return found

    every_task = tasks(_definition(stack)["States"])
    assert {"ProcessSteps", "PollCheck", "BranchProcessSteps", "BranchPollCheck"} <= every_task.keys()
    for name, state in every_task.items():
        retries = [retry for retry in state["Retry"] if faults & set(retry["ErrorEquals"])]
        assert len(retries) == 1 and set(retries[0]["ErrorEquals"]) == faults, name
        assert 1 <= retries[0]["MaxAttempts"] <= 5 and retries[0]["BackoffRate"] > 1, name


def test_state_machine_is_standard_with_its_own_role(stack: Stack) -> None:
    """Long-running, callback-waiting tasks need STANDARD (EXPRESS stops after 5 minutes)."""
    machine = stack.one(STATE_MACHINE, "orchestrator")
    assert machine.inputs["type"] == "STANDARD"
    assert machine.inputs["name"] == f"aiwf-{stack.stage}-orchestrator"
    assert machine.inputs["roleArn"] not in {f.inputs["role"] for f in stack.functions()}


def _express(stack: Stack) -> Any:
    return stack.one(STATE_MACHINE, "orchestrator-express")


def test_express_machine_is_the_builders_express_variant_on_the_same_role(stack: Stack) -> None:
    """Quick runs: the same builder, the same functions and role, type EXPRESS."""
    machine = _express(stack)
    functions = {f.inputs["handler"]: f.outputs["arn"] for f in stack.functions()}
    expected = build_orchestrator_definition(
        functions["aiwf.handlers.orchestrator.process"], functions["aiwf.handlers.orchestrator.finalize"], express=True
    )
    assert json.loads(machine.inputs["definition"]) == expected
    assert machine.inputs["type"] == "EXPRESS"
    assert machine.inputs["name"] == f"aiwf-{stack.stage}-orchestrator-express"
    assert machine.inputs["roleArn"] == stack.one(STATE_MACHINE, "orchestrator").inputs["roleArn"]


def test_express_definition_is_valid_asl_without_what_express_refuses(stack: Stack) -> None:
    """Express workflows support no `.waitForTaskToken` or `.sync` integrations; the variant has
    neither, nor the poll and branch states a quick run hands over to Standard for."""
    definition = json.loads(_express(stack).inputs["definition"])
    verdict = validate_asl(for_validator(definition))
    assert verdict["isValid"], verdict["errors"]
    text = json.dumps(definition)
    assert ".waitForTaskToken" not in text and ".sync" not in text
    assert not {"WaitForEvent", "PollWait", "PollCheck", "Branches"} & definition["States"].keys()
    process = definition["States"]["ProcessSteps"]["Parameters"]["Payload"]
    assert process["executionStartTime.$"] == "$$.Execution.StartTime"


def test_quick_runs_leave_the_express_machine_for_the_standard_one(stack: Stack) -> None:
    """ProcessSteps hands a quick run over to the Standard machine, which it names in its environment."""
    process = stack.function("aiwf.handlers.orchestrator.process")
    assert process.inputs["environment"]["variables"]["STATE_MACHINE_ARN"] == stack.outputs["stateMachineArn"]
    api = stack.function("aiwf.handlers.task_api.handler")
    variables = api.inputs["environment"]["variables"]
    assert variables["EXPRESS_STATE_MACHINE_ARN"] == _express(stack).outputs["arn"]
    assert variables["STATE_MACHINE_ARN"] == stack.outputs["stateMachineArn"]
    assert api.inputs["timeout"] == 29  # API Gateway's integration timeout: a quick run waits up to 25 s
