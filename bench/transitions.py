"""State transitions and Lambda invocations per task, counted from execution histories.

Runs reference flows on the local stack (the real program, the real state machine) and, for
comparison, the same flows through an Allma-style layout derived here from the deployed
definition: initialize, then a loop of choose -> process ONE step -> check (Route), then
finalize. Prints per-step figures and $ per 1,000 tasks at list prices (Standard workflows
$0.025 per 1,000 transitions; Lambda $0.20 per 1M requests; Lambda duration not included).

Then the quick-run path (POST /tasks with "wait"): the same flows on the Express machine with
StartSyncExecution, priced at Express list prices ($1.00 per 1M requests, $0.00001667 per
GB-second, billed in 64 MB and 100 ms steps); a flow with a parallel step runs on Express up to
the fork and on Standard from there, so it pays both. Express durations are the local stack's
(slower than AWS's: its Lambda calls cross a local HTTP hop), so the duration part is an upper
bound. List prices as published for us-east-1 on 2026-12-02.

The comparison machine runs the deployed `process-steps` function, whose role may read the
history of (and continue) the orchestrator's executions only (`HistoryQuota` and `ContinueAsNew`
in `infra/orchestrator.py`); as a second machine in AWS would, it gets the same grant for its
own executions: the bench, signing as the local admin, adds it to that role for the run.

    .venv/bin/python -m bench.transitions [--small]

`--small` times one quick run of each flow instead of the median of five (the suite runs it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from local.stack import LocalStack  # noqa: E402
from tests.integration.stub_server import start_stub  # noqa: E402
from tests.sigv4 import SigV4  # noqa: E402

PRICE_PER_TRANSITION = 0.025 / 1000
PRICE_PER_INVOCATION = 0.20 / 1_000_000
PRICE_PER_EXPRESS_REQUEST = 1.00 / 1_000_000
PRICE_PER_EXPRESS_GB_SECOND = 0.00001667
EXPRESS_MEMORY_GB = 64 / 1024  # the smallest chunk: a quick run's state is a task id and an action
INLINE_STEPS = 10
QUICK_RUNS = 5


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


# One branch of the reference flows' 4-branch parallel step: a transform, then succeed.
BRANCH: dict[str, Any] = {
    "startAt": "b",
    "steps": {"b": {"type": "transform", "value": "{{ branchId }}", "next": "ok"}, "ok": {"type": "succeed"}},
}


def mixed_flow(notify_url: str, job_url: str) -> dict[str, Any]:
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
            "fanout": {"type": "parallel", "branches": [{"id": f"b{i}", **BRANCH} for i in range(4)], "next": "done"},
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


def express_cost(seconds: float) -> float:
    """$ for one Express execution of `seconds`: the request, and its duration in 100 ms steps."""
    billed = max(math.ceil(seconds * 10), 1) / 10
    return PRICE_PER_EXPRESS_REQUEST + billed * EXPRESS_MEMORY_GB * PRICE_PER_EXPRESS_GB_SECOND


def quick_line(label: str, seconds: float, transitions: int, invocations: int) -> str:
    dollars = 1000 * (express_cost(seconds) + transitions * PRICE_PER_TRANSITION + invocations * PRICE_PER_INVOCATION)
    return (
        f"{label:<34} express {seconds * 1000:>5.0f} ms + transitions {transitions:>3}  "
        f"lambda invocations {invocations:>3}  ${dollars:.4f} per 1,000 tasks"
    )


def parallel_flow() -> dict[str, Any]:
    """Two inline steps, a 4-branch parallel step, a succeed: no waits or polls, so a quick run."""
    return {
        "startAt": "prepare",
        "steps": {
            "prepare": {"type": "transform", "value": "{{ input.n }}", "resultPath": "n", "next": "double"},
            "double": {"type": "transform", "value": "{{ n * 2 }}", "resultPath": "d", "next": "fanout"},
            "fanout": {"type": "parallel", "branches": [{"id": f"b{i}", **BRANCH} for i in range(4)], "next": "done"},
            "done": {"type": "succeed"},
        },
    }


def allow_comparison_machine(stack: LocalStack, process_arn: str, machine_arn: str) -> None:
    """Grant `process-steps`' role, for the comparison machine's executions, what its own policy
    grants for the orchestrator's: counting an execution's history events and continuing it."""
    role = stack.client("lambda").get_function_configuration(FunctionName=process_arn)["Role"].rsplit("/", 1)[-1]
    executions = machine_arn.replace(":stateMachine:", ":execution:") + ":*"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "states:GetExecutionHistory", "Resource": executions},
            {"Effect": "Allow", "Action": "states:StartExecution", "Resource": machine_arn},
        ],
    }
    stack.client("iam").put_role_policy(
        RoleName=role, PolicyName="bench-allma-style-comparison", PolicyDocument=json.dumps(policy)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transitions", description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="one quick run per flow (what the suite runs)")
    args = parser.parse_args(argv)
    quick_runs = 1 if args.small else QUICK_RUNS
    stub = start_stub()
    with LocalStack(stage="dev", port=0) as stack:
        api, key = stack.outputs["taskApiUrl"], stack.outputs["apiKey"]
        headers = {"x-api-key": key}
        sfn = stack.client("stepfunctions")
        machine = stack.outputs["stateMachineArn"]

        def start(document: dict[str, Any]) -> str:
            flow_id = f"bench-{uuid.uuid4().hex[:8]}"
            requests.put(  # flow registration is an operator's (AWS_IAM)
                f"{api}/flows/{flow_id}",
                json={**document, "id": flow_id},
                auth=SigV4(stack.outputs["awsCredentials"]),
                timeout=30,
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
        allow_comparison_machine(stack, process_arn, allma)

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

        # 3. the quick-run path: the same inline flow, and a parallel one, on the Express machine
        express = stack.outputs.get("expressStateMachineArn") or express_machine_of(stack)
        # StartSyncExecution's endpoint is `sync-states...`: no host prefix on the local endpoint.
        sync = boto3.client(
            "stepfunctions",
            endpoint_url=stack.endpoint_url,
            region_name=stack.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(inject_host_prefix=False, read_timeout=120, retries={"total_max_attempts": 1}),
        )

        def quick(document: dict[str, Any]) -> tuple[float, int, int]:
            """(Express seconds, Standard transitions after a handover, its invocations), medians."""
            runs = []
            for _ in range(quick_runs):
                task_id = pending_task(stack, api, headers, process_arn, document)
                result = sync.start_sync_execution(
                    stateMachineArn=express, name=task_id, input=json.dumps({"taskId": task_id, "rounds": 0})
                )
                if result["status"] != "SUCCEEDED":
                    raise RuntimeError(f"quick run of {task_id} ended {result['status']}: {result}")
                seconds = (result["stopDate"] - result["startDate"]).total_seconds()
                continued = machine.replace(":stateMachine:", ":execution:") + f":{task_id}-c2"
                try:
                    wait_done(sfn, continued)
                    transitions, invocations = counts(sfn, continued)
                except sfn.exceptions.ExecutionDoesNotExist:
                    transitions, invocations = 0, 0
                runs.append((seconds, transitions, invocations))
            runs.sort()
            return runs[len(runs) // 2]

        quick_inline = quick(inline_flow())
        quick_parallel = quick(parallel_flow())
        parallel_id = start(parallel_flow())
        parallel_execution = machine.replace(":stateMachine:", ":execution:") + f":{parallel_id}"
        wait_done(sfn, parallel_execution)
        parallel_standard = counts(sfn, parallel_execution)

    mixed_steps = 5 + 4 * 2
    print(line("10-step inline, orchestrator", *ours, INLINE_STEPS))
    print(line("10-step inline, Allma-style loop", *theirs, INLINE_STEPS))
    print(line("wait+poll+parallel, orchestrator", *mixed, mixed_steps))
    print(line("wait+poll+parallel, Allma-style", *mixed_theirs, mixed_steps))
    print(line("2 inline + 4-branch parallel", *parallel_standard, 2 + 4 * 2))
    # The Express run's own Lambda calls are ProcessSteps rounds: one for inline steps (10 fit in one).
    print(quick_line("quick run: 10-step inline", quick_inline[0], 0, 1))
    print(quick_line("quick run: 2 inline + parallel", quick_parallel[0], *quick_parallel[1:3]))
    standard_inline = 1000 * (ours[0] * PRICE_PER_TRANSITION + ours[1] * PRICE_PER_INVOCATION)
    express_inline = 1000 * (express_cost(quick_inline[0]) + PRICE_PER_INVOCATION)
    print(f"quick run / Standard cost, 10-step inline: {express_inline / standard_inline:.2f}")
    print(f"transitions per inline step: {ours[0] / INLINE_STEPS:.2f}")
    print(
        f"Allma-style / orchestrator transitions: {theirs[0] / ours[0]:.1f}x (10-step inline), "
        f"{mixed_theirs[0] / mixed[0]:.1f}x (wait+poll+parallel)"
    )
    stub.server.shutdown()
    return 0


def express_machine_of(stack: LocalStack) -> str:
    """The Express machine quick runs take (the task API function's setting names it)."""
    functions = stack.client("lambda").list_functions()["Functions"]
    api_function = next(f for f in functions if f["Handler"] == "aiwf.handlers.task_api.handler")
    return api_function["Environment"]["Variables"]["EXPRESS_STATE_MACHINE_ARN"]


def pending_task(stack: LocalStack, api: str, headers: dict[str, str], process_arn: str, document: dict) -> str:
    """A PENDING task of `document` with no execution, written with the functions' own settings."""
    flow_id = f"bench-{uuid.uuid4().hex[:8]}"
    requests.put(  # flow registration is an operator's (AWS_IAM)
        f"{api}/flows/{flow_id}",
        json={**document, "id": flow_id},
        auth=SigV4(stack.outputs["awsCredentials"]),
        timeout=30,
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
