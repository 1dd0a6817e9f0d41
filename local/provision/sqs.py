"""SQS queues, created in moto with what decides redelivery (visibility timeout, retention, redrive policy)."""

from __future__ import annotations

from local.provision.context import Args, Context, auto_name


def queue(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or auto_name(args.name)
    # What decides redelivery (local.sqs_event_source leaves it to the queue, as AWS does).
    attributes = {
        dst: str(int(i[src])) if kind is int else str(i[src])
        for src, dst, kind in (
            ("visibilityTimeoutSeconds", "VisibilityTimeout", int),
            ("messageRetentionSeconds", "MessageRetentionPeriod", int),
            ("redrivePolicy", "RedrivePolicy", str),
        )
        if i.get(src) not in (None, "")
    }
    url = ctx.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = ctx.arn("sqs", name)
    return url, {**i, "name": name, "arn": arn, "url": url}


HANDLERS = {"aws:sqs/queue:Queue": queue}
