"""Lambda layers, functions, permissions, invocations and event source mappings, in moto.

A function is created from the very archive the program declares (`local.archive`); its code runs
in the warm workers of `local.lambda_runtime`. SQS mappings are also started here as pollers of
`local.sqs_event_source`; DynamoDB stream mappings are picked up by `local.dynamodb_event_source`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from local import sqs_event_source
from local.archive import archive_to_zip
from local.provision.context import Args, Context, auto_name
from local.registry import FunctionRecord

log = logging.getLogger("local")


def layer_version(ctx: Context, args: Args) -> tuple[str, dict]:
    # The layer's archive is built for the Lambda platform by an explicit step and does not
    # exist locally; the local interpreter's identical pins stand in for it. Never read it.
    i = args.inputs
    name = i.get("layerName") or args.name
    layer_arn = ctx.arn("lambda", f"layer:{name}")
    return f"{layer_arn}:1", {
        **i,
        "layerName": name,
        "layerArn": layer_arn,
        "arn": f"{layer_arn}:1",
        "version": "1",
        "createdDate": "2024-01-01T00:00:00.000+0000",
    }


def function(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or auto_name(args.name)
    code = archive_to_zip(i["code"])
    env = dict(((i.get("environment") or {}).get("variables")) or {})
    request: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": i.get("runtime", "python3.12"),
        "Role": i["role"],
        "Handler": i.get("handler", "index.handler"),
        "Code": {"ZipFile": code},
        "Timeout": int(i.get("timeout") or 3),
        "MemorySize": int(i.get("memorySize") or 128),
        "Environment": {"Variables": {k: str(v) for k, v in env.items()}},
        "Publish": bool(i.get("publish", False)),
    }
    if i.get("description"):
        request["Description"] = i["description"]
    created = ctx.client("lambda").create_function(**request)
    arn = created["FunctionArn"]
    version = created.get("Version", "$LATEST")
    with ctx.lock:
        ctx.registry.functions[name] = FunctionRecord(
            arn=arn,
            handler=request["Handler"],
            environment=request["Environment"]["Variables"],
            timeout=request["Timeout"],
            memory_size=request["MemorySize"],
            runtime=request["Runtime"],
            layers=list(i.get("layers") or []),
            code_size=len(code),
        )
    invoke = f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    qualified = f"{arn}:{version}"
    return name, {
        **i,
        "name": name,
        "arn": arn,
        "invokeArn": invoke,
        "version": version,
        "qualifiedArn": qualified,
        "qualifiedInvokeArn": invoke.replace(arn, qualified),
        "codeSha256": created.get("CodeSha256", ""),
        "sourceCodeHash": created.get("CodeSha256", ""),
        "lastModified": created.get("LastModified", ""),
        "sourceCodeSize": len(code),
    }


def permission(ctx: Context, args: Args) -> tuple[str, dict]:
    statement = args.inputs.get("statementId") or auto_name(args.name)
    return statement, {**args.inputs, "statementId": statement}


def invocation(ctx: Context, args: Args) -> tuple[str, dict]:
    """Invoke the function now, as `pulumi up` does; a function error fails the program run."""
    i = args.inputs
    answer = ctx.client("lambda").invoke(FunctionName=i["functionName"], Payload=i["input"].encode())
    result = answer["Payload"].read().decode()
    if answer.get("FunctionError"):
        raise RuntimeError(f"invocation {args.name} of {i['functionName']} failed: {result}")
    _say_summary(result)
    return f"{i['functionName']}_{auto_name('invocation')}", {**i, "result": result}


def event_source_mapping(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    request: dict[str, Any] = {
        "EventSourceArn": i["eventSourceArn"],
        "FunctionName": i["functionName"],
        "Enabled": bool(i.get("enabled", True)),
    }
    if i.get("batchSize"):
        request["BatchSize"] = int(i["batchSize"])
    if i.get("startingPosition"):
        request["StartingPosition"] = i["startingPosition"]
    # Recorded by moto on the mapping and honoured by local.dynamodb_event_source.
    for src, dst, kind in (
        ("functionResponseTypes", "FunctionResponseTypes", list),
        ("bisectBatchOnFunctionError", "BisectBatchOnFunctionError", bool),
        ("maximumRetryAttempts", "MaximumRetryAttempts", int),
        ("maximumBatchingWindowInSeconds", "MaximumBatchingWindowInSeconds", int),
    ):
        if i.get(src) is not None:
            request[dst] = kind(i[src])  # Pulumi numbers arrive as floats
    on_failure = ((i.get("destinationConfig") or {}).get("onFailure") or {}).get("destinationArn")
    if on_failure:
        request["DestinationConfig"] = {"OnFailure": {"Destination": on_failure}}
    mapping = ctx.client("lambda").create_event_source_mapping(**request)
    if i["eventSourceArn"].startswith("arn:aws:sqs:"):  # polled by us, not inside moto's send_message
        sqs_event_source.start(
            sqs_event_source.SqsMapping(
                uuid=mapping["UUID"],
                queue_arn=i["eventSourceArn"],
                function_arn=mapping["FunctionArn"],
                batch_size=int(i.get("batchSize") or 10),
                report_batch_item_failures="ReportBatchItemFailures" in (i.get("functionResponseTypes") or []),
            ),
            ctx.endpoint_url,
        )
    return mapping["UUID"], {
        **i,
        "uuid": mapping["UUID"],
        "functionArn": mapping["FunctionArn"],
        "state": mapping.get("State", "Enabled"),
        "arn": ctx.arn("lambda", f"event-source-mapping:{mapping['UUID']}"),
    }


HANDLERS = {
    "aws:lambda/layerVersion:LayerVersion": layer_version,
    "aws:lambda/function:Function": function,
    "aws:lambda/permission:Permission": permission,
    "aws:lambda/eventSourceMapping:EventSourceMapping": event_source_mapping,
    "aws:lambda/invocation:Invocation": invocation,
}


def _say_summary(result: str) -> None:
    """A deploy-time function that answers a `summary` (the flow registrar: which shipped flows it
    registered) has it printed, as `pulumi up` shows an invocation's result."""
    try:
        answer = json.loads(result)
    except ValueError:
        return
    if isinstance(answer, dict) and isinstance(answer.get("summary"), str):
        log.info("%s", answer["summary"])
