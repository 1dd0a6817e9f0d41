"""State transitions and Lambda invocations per task, counted from execution histories.

Runs reference flows on the local stack (the real program, the real state machine) and, for
comparison, the same flows through an Allma-style layout derived here from the deployed
definition: initialize, then a loop of choose -> process ONE step -> check (Route), then
finalize. Prints per-step figures and $ per 1,000 tasks at list prices (Standard workflows
$0.025 per 1,000 transitions; Lambda $0.20 per 1M requests; Lambda duration not included).

    .venv/bin/python -m bench.transitions
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from local.stack import LocalStack  # noqa: E402
from tests.integration.stub_server import start_stub  # noqa: E402

PRICE_PER_TRANSITION = 0.025 / 1000
PRICE_PER_INVOCATION = 0.20 / 1_000_000
INLINE_STEPS = 10


def inline_flow() -> dict[str, Any]:
    steps: dict[str, Any] = {}
    for i in range(INLINE_STEPS - 1):
        steps[f"s{i}"] = {
            "type": "transform",
            "value": f"{{{{ input.n + {i} }}}}",
            "resultPath": f"v{i}",
            "next": f"s{i + 1}",
        }
    steps[f"s{INLINE_STEPS - 1}"] = {"type": "succeed"}
    return {"startAt": "s0", "steps": steps}


def mixed_flow(notify_url: str, job_url: str) -> dict[str, Any]:
    branch = {
        "startAt": "b",
        "steps": {"b": {"type": "transform", "value": "{{ branchId }}", "next": "ok"}, "ok": {"type": "succeed"}},
    }
    return {
        "startAt": "prepare",
        "steps": {
            "prepare": {"type": "transform", "value": "{{ input.n }}", "resultPath": "n", "next": "approve"},
            "approve": {
                "type": "wait_for_event",
                "timeoutSeconds": 60,
                "notify": {"url": notify_url},
                "next": "report",
            },
            "report": {
                "type": "poll",
                "check": {"type": "http", "url": job_url},
                "until": {"path": "state", "equals": "done"},
                "intervalSeconds": 0,
                "maxAttempts": 5,
                "next": "fanout",
            },
            "fanout": {"type": "parallel", "branches": [{"id": f"b{i}", **branch} for i in range(4)], "next": "done"},
            "done": {"type": "succeed"},
        },
    }


def allma_style_definition(orchestrator: dict[str, Any]) -> dict[str, Any]:
    """The orchestrator's own definition made Allma-style: an InitializeTask call, then a loop of
    ChooseNext -> ProcessSteps (ONE step per call) -> Route (the check), a FinalizeTask call at the
    end; the native states (waits, polls, the branch Map) are the same ones."""
    definition = json.loads(json.dumps(orchestrator))

    def one_step_loop(states: dict[str, Any], prefix: str) -> None:
        process, choose = f"{prefix}ProcessSteps", f"{prefix}ChooseNext"
        redirect(states, process, choose)
        states[process]["Parameters"]["Payload"]["maxSteps"] = 1
        states[choose] = {"Type": "Pass", "Next": process}

    def redirect(states: dict[str, Any], old: str, new: str) -> None:
        for state in states.values():
            if state.get("Next") == old:
                state["Next"] = new
            for choice in state.get("Choices", []):
                if choice.get("Next") == old:
                    choice["Next"] = new

    states = definition["States"]
    branch_states = states["Branches"]["ItemProcessor"]["States"]
    one_step_loop(states, "")
    one_step_loop(branch_states, "Branch")
    bookend = {key: value for key, value in states["ProcessSteps"].items() if key != "Catch"}
    states["InitializeTask"] = {**bookend, "Next": "Route"}
    states["InitializeTask"]["Parameters"] = {
        **bookend["Parameters"],
        "Payload": {"taskId.$": "$.taskId", "maxSteps": 0},
    }
    states["FinalizeTask"] = {**states["InitializeTask"], "Next": "Done"}
    redirect(states, "Done", "FinalizeTask")
    states["FinalizeTask"]["Next"] = "Done"
    definition["StartAt"] = "InitializeTask"
    return definition


def counts(sfn: Any, execution_arn: str) -> tuple[int, int]:
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    transitions = sum(1 for e in events if e["type"].endswith("StateEntered"))
    invocations = sum(
        1
        for e in events
        if e["type"] == "LambdaFunctionScheduled"
        or (e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "lambda")
    )
    return transitions, invocations


def wait_done(sfn: Any, execution_arn: str) -> None:
    for _ in range(600):
        if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
            return
        time.sleep(0.05)
    raise RuntimeError(f"{execution_arn} did not finish")


def line(label: str, transitions: int, invocations: int, steps: int) -> str:
    dollars = 1000 * (transitions * PRICE_PER_TRANSITION + invocations * PRICE_PER_INVOCATION)
    return (
        f"{label:<34} transitions {transitions:>3} ({transitions / steps:.2f}/step)  "
        f"lambda invocations {invocations:>3}  ${dollars:.4f} per 1,000 tasks"
    )


def main() -> int:
    stub = start_stub()
    with LocalStack(stage="dev", port=0) as stack:
        api, key = stack.outputs["taskApiUrl"], stack.outputs["apiKey"]
        headers = {"x-api-key": key}
        sfn = stack.client("stepfunctions")
        machine = stack.outputs["stateMachineArn"]

        def start(document: dict[str, Any]) -> str:
            flow_id = f"bench-{uuid.uuid4().hex[:8]}"
            requests.put(
                f"{api}/flows/{flow_id}", json={**document, "id": flow_id}, headers=headers, timeout=30
            ).raise_for_status()
            response = requests.post(
                f"{api}/tasks", json={"flowId": flow_id, "input": {"n": 1}}, headers=headers, timeout=30
            )
            response.raise_for_status()
            return response.json()["taskId"]

        described = sfn.describe_state_machine(stateMachineArn=machine)
        definition = json.loads(described["definition"])
        process_arn = definition["States"]["ProcessSteps"]["Parameters"]["FunctionName"]
        allma = sfn.create_state_machine(
            name=f"allma-style-{uuid.uuid4().hex[:6]}",
            definition=json.dumps(allma_style_definition(definition)),
            roleArn=described["roleArn"],  # the orchestrator's role: it may invoke the same functions
        )["stateMachineArn"]

        def run_allma_style(document: dict[str, Any]) -> str:
            """The same flow on the Allma-style machine, for a task it starts itself."""
            pending = pending_task(stack, api, headers, process_arn, document)
            return sfn.start_execution(
                stateMachineArn=allma, name=pending, input=json.dumps({"taskId": pending, "rounds": 0})
            )["executionArn"]

        def finish_mixed(task_id: str, notify_path: str) -> None:
            token = stub.wait_for(notify_path)[0].body["resumeToken"]
            requests.put(
                f"{api}/tasks/{task_id}",
                json={"resumeToken": token, "status": "SUCCEEDED"},
                headers=headers,
                timeout=30,
            ).raise_for_status()

        def mixed_document() -> tuple[dict[str, Any], str]:
            notify_path, job_path = f"/notify/{uuid.uuid4().hex}", f"/job/{uuid.uuid4().hex}"
            stub.reply(job_path, (200, {"state": "running"}), (200, {"state": "done"}))
            return mixed_flow(stub.url + notify_path, stub.url + job_path), notify_path

        # 1. the 10-step inline flow, both layouts
        task_id = start(inline_flow())
        execution = machine.replace(":stateMachine:", ":execution:") + f":{task_id}"
        wait_done(sfn, execution)
        ours = counts(sfn, execution)
        allma_execution = run_allma_style(inline_flow())
        wait_done(sfn, allma_execution)
        theirs = counts(sfn, allma_execution)

        # 2. wait + poll + 4-branch parallel, both layouts
        document, notify_path = mixed_document()
        mixed_id = start(document)
        finish_mixed(mixed_id, notify_path)
        mixed_execution = machine.replace(":stateMachine:", ":execution:") + f":{mixed_id}"
        wait_done(sfn, mixed_execution)
        mixed = counts(sfn, mixed_execution)
        document, notify_path = mixed_document()
        allma_mixed_execution = run_allma_style(document)
        allma_mixed_id = json.loads(sfn.describe_execution(executionArn=allma_mixed_execution)["input"])["taskId"]
        finish_mixed(allma_mixed_id, notify_path)
        wait_done(sfn, allma_mixed_execution)
        mixed_theirs = counts(sfn, allma_mixed_execution)
        for execution_arn in (mixed_execution, allma_execution, allma_mixed_execution):
            status = sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "SUCCEEDED":
                raise RuntimeError(f"{execution_arn} ended {status}: the comparison would be meaningless")

    mixed_steps = 5 + 4 * 2
    print(line("10-step inline, orchestrator", *ours, INLINE_STEPS))
    print(line("10-step inline, Allma-style loop", *theirs, INLINE_STEPS))
    print(line("wait+poll+parallel, orchestrator", *mixed, mixed_steps))
    print(line("wait+poll+parallel, Allma-style", *mixed_theirs, mixed_steps))
    print(f"transitions per inline step: {ours[0] / INLINE_STEPS:.2f}")
    print(
        f"Allma-style / orchestrator transitions: {theirs[0] / ours[0]:.1f}x (10-step inline), "
        f"{mixed_theirs[0] / mixed[0]:.1f}x (wait+poll+parallel)"
    )
    stub.server.shutdown()
    return 0


def pending_task(stack: LocalStack, api: str, headers: dict[str, str], process_arn: str, document: dict) -> str:
    """A PENDING task of `document` with no execution, written with the functions' own settings."""
    flow_id = f"bench-{uuid.uuid4().hex[:8]}"
    requests.put(
        f"{api}/flows/{flow_id}", json={**document, "id": flow_id}, headers=headers, timeout=30
    ).raise_for_status()
    variables = stack.client("lambda").get_function_configuration(FunctionName=process_arn)["Environment"]["Variables"]
    os.environ.update(
        {k: v for k, v in variables.items() if k.endswith(("_TABLE", "_BUCKET", "_BYTES"))}
        | {
            "AWS_ENDPOINT_URL": stack.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": stack.region,
        }
    )
    from aiwf.clock import now_iso
    from aiwf.repository import Task, TaskRepository

    task_id = str(uuid.uuid4())
    now = now_iso()
    TaskRepository().create(
        Task(task_id, flow_id, 1, "PENDING", 1, now, now, context={"input": {"n": 1}, "taskId": task_id})
    )
    return task_id


if __name__ == "__main__":
    raise SystemExit(main())
