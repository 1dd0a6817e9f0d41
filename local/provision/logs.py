"""CloudWatch Logs log groups, created in moto with their retention."""

from __future__ import annotations

from local.provision.context import Args, Context, auto_name


def log_group(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or auto_name(args.name)
    logs = ctx.client("logs")
    logs.create_log_group(logGroupName=name)
    if i.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(i["retentionInDays"]))
    return name, {**i, "name": name, "arn": ctx.arn("logs", f"log-group:{name}")}


HANDLERS = {"aws:cloudwatch/logGroup:LogGroup": log_group}
