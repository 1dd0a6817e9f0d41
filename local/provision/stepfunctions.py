"""Step Functions state machines, created in moto (whose engine executes the ASL)."""

from __future__ import annotations

from typing import Any

from local.provision.context import Args, Context, auto_name


def state_machine(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or ctx.stable(f"states:{args.name}", lambda: auto_name(args.name))
    request: dict[str, Any] = {
        "name": name,
        "definition": i["definition"],
        "roleArn": i["roleArn"],
        "type": i.get("type", "STANDARD"),
    }
    tracing = i.get("tracingConfiguration") or {}
    if "enabled" in tracing:
        request["tracingConfiguration"] = {"enabled": bool(tracing["enabled"])}
    created = ctx.client("stepfunctions").create_state_machine(**request)
    arn = created["stateMachineArn"]
    return arn, {
        **i,
        "name": name,
        "arn": arn,
        "status": "ACTIVE",
        "creationDate": created["creationDate"].isoformat(),
        "stateMachineVersionArn": "",
        "revisionId": "",
    }


HANDLERS = {"aws:sfn/stateMachine:StateMachine": state_machine}
