"""EventBridge rules and targets, created in moto.

moto matches the rules' patterns; `local.moto_glue` delivers the matches to Lambda targets, which
moto's EventBridge cannot invoke.
"""

from __future__ import annotations

from typing import Any

from local.provision.context import Args, Context, auto_name


def event_rule(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or auto_name(args.name)
    request: dict[str, Any] = {"Name": name, "State": i.get("state", "ENABLED")}
    for src, dst in (
        ("eventPattern", "EventPattern"),
        ("scheduleExpression", "ScheduleExpression"),
        ("description", "Description"),
        ("eventBusName", "EventBusName"),
    ):
        if i.get(src):
            request[dst] = i[src]
    arn = ctx.client("events").put_rule(**request)["RuleArn"]
    return name, {**i, "name": name, "arn": arn}


def event_target(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    target_id = i.get("targetId") or auto_name(args.name)
    target: dict[str, Any] = {"Id": target_id, "Arn": i["arn"]}
    if i.get("input"):
        target["Input"] = i["input"]
    request: dict[str, Any] = {"Rule": i["rule"], "Targets": [target]}
    if i.get("eventBusName"):
        request["EventBusName"] = i["eventBusName"]
    ctx.client("events").put_targets(**request)
    return f"{i['rule']}-{target_id}", {**i, "targetId": target_id}


HANDLERS = {"aws:cloudwatch/eventRule:EventRule": event_rule, "aws:cloudwatch/eventTarget:EventTarget": event_target}
