"""The orchestrator protocol (schema/orchestrator.json) agrees with the state machine and the runtime.

The runtime loads the file into enums (aiwf.protocol) and the ASL builder reads it itself (infra
never imports lambdas), so these checks hold the three together: every action the runtime can
answer has a Route choice and every choice is an action, the modes the state machine sends are the
modes the handler serves, and the error names both sides match on are the same strings.
"""

from __future__ import annotations

import ast
from pathlib import Path

from aiwf import protocol
from aiwf.errors import ConcurrentUpdate
from aiwf.protocol import Action, ErrorName, Mode
from infra import orchestrator_asl
from infra.orchestrator_asl import build_orchestrator_definition
from infra.packaging import _sources
from tests.unit.lambdas.state_machine import action_fields

P = "arn:aws:lambda:us-east-1:123456789012:function:p"
F = "arn:aws:lambda:us-east-1:123456789012:function:f"
AIWF = Path(protocol.__file__).resolve().parent


def _states() -> dict:
    return build_orchestrator_definition(P, F)["States"]


def _routed(route: dict) -> dict[str, set[str]]:
    """Action -> the states Route sends it to."""
    routed: dict[str, set[str]] = {}
    for choice in route["Choices"]:
        conditions = choice.get("And", [choice])
        action = next(c["StringEquals"] for c in conditions if c["Variable"] == "$.action")
        routed.setdefault(action, set()).add(choice["Next"])
    return routed


def test_runtime_and_builder_read_the_same_file():
    assert protocol.DOCUMENT == orchestrator_asl.PROTOCOL
    assert "schema/orchestrator.json" in {name for _, name in _sources()}, "shipped in the function package"


def test_every_action_has_a_route_choice_and_every_choice_is_an_action():
    states = _states()
    routed = _routed(states["Route"])
    assert set(routed) == {action.value for action in Action}
    for targets in routed.values():
        assert targets <= set(states)
    assert routed[Action.SUCCEEDED] == {"Done"} and routed[Action.FAILED] == {"PickFailure"}
    assert routed[Action.WAIT] == {"WaitForEvent", "WaitForEventWithHeartbeat"}


def test_a_branch_routes_every_action_a_branch_can_answer():
    inner = _states()["Branches"]["ItemProcessor"]["States"]
    routed = _routed(inner["BranchRoute"])
    assert set(routed) == set(Action) - {Action.PARALLEL, Action.CONTINUED}  # no nested fork, no handover
    assert routed[Action.SUCCEEDED] == routed[Action.FAILED] == {"BranchEnd"}
    for targets in routed.values():
        assert targets <= set(inner)


def test_the_modes_the_state_machine_sends_are_the_modes_the_handler_serves():
    states = _states()
    sent = {
        state["Parameters"]["Payload"].get("mode", Mode.PROCESS)
        for state in states.values()
        if state["Type"] == "Task" and state["Parameters"]["FunctionName"] == P
    }
    assert sent == set(Mode) - {Mode.RESTART}  # restart: sent by the local stack after a restart only
    handler = (AIWF / "handlers" / "orchestrator.py").read_text()
    for mode in Mode:
        assert f"Mode.{mode.name}" in handler


def test_shared_error_names():
    states = _states()
    assert states["WaitForEvent"]["Catch"][0]["ErrorEquals"] == [ErrorName.RESUME_FAILURE]
    retried = {name for retry in states["ProcessSteps"]["Retry"] for name in retry["ErrorEquals"]}
    assert set(protocol.INVOCATION_FAULTS) <= retried
    assert list(protocol.INVOCATION_FAULTS) == orchestrator_asl.INVOCATION_FAULTS
    # the Lambda runtime reports an unhandled exception by its class name
    assert ConcurrentUpdate.__name__ == ErrorName.CONCURRENT_UPDATE
    assert ErrorName.CONCURRENT_UPDATE in protocol.INVOCATION_FAULTS
    assert states["UnknownAction"]["Parameters"]["caught"]["Error"] == ErrorName.UNKNOWN_ACTION


def _answers(tree: ast.AST) -> list[ast.expr]:
    """The values of every `"action": ...` and `"kind": ...` in dict literals of a module."""
    values = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in ("action", "kind"):
                    values.append(value)
    return values


def test_the_runtime_answers_only_with_protocol_members():
    """No action or step-state kind is written as a bare string anywhere in the runtime."""
    enums = {"Action", "StepStateKind"}
    for path in sorted(AIWF.rglob("*.py")):
        for value in _answers(ast.parse(path.read_text())):
            is_member = isinstance(value, ast.Attribute) and getattr(value.value, "id", None) in enums
            assert is_member or isinstance(value, ast.Name), f"{path.name}:{value.lineno} writes a bare value"


def test_every_action_declares_the_fields_it_carries():
    for action in Action:
        assert action_fields(action) <= {
            "stepId",
            "timeoutSeconds",
            "heartbeatSeconds",
            "seconds",
            "attempt",
            "maxConcurrency",
            "branches",
            "executionArn",
            "error",
        }
