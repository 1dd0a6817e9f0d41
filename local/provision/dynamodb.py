"""DynamoDB tables, as declared: keys, indexes, billing, stream, TTL and point-in-time recovery, in moto."""

from __future__ import annotations

from typing import Any

from local.provision.context import Args, Context, auto_name


def table(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or ctx.stable(f"dynamodb:{args.name}", lambda: auto_name(args.name))
    if i.get("keySchemas"):  # the newer form that replaces hashKey/rangeKey
        keys = [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in i["keySchemas"]]
    else:
        keys = [{"AttributeName": i["hashKey"], "KeyType": "HASH"}]
        if i.get("rangeKey"):
            keys.append({"AttributeName": i["rangeKey"], "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in i.get("attributes", [])
        ],
    }
    provisioned = i.get("billingMode", "PROVISIONED") == "PROVISIONED"
    throughput = {
        "ReadCapacityUnits": int(i.get("readCapacity") or 1),
        "WriteCapacityUnits": int(i.get("writeCapacity") or 1),
    }
    request["BillingMode"] = "PROVISIONED" if provisioned else "PAY_PER_REQUEST"
    if provisioned:
        request["ProvisionedThroughput"] = throughput
    gsis = []
    for index in i.get("globalSecondaryIndexes") or []:
        if index.get("keySchemas"):
            schema = [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in index["keySchemas"]]
        else:
            schema = [{"AttributeName": index["hashKey"], "KeyType": "HASH"}]
            if index.get("rangeKey"):
                schema.append({"AttributeName": index["rangeKey"], "KeyType": "RANGE"})
        projection: dict[str, Any] = {"ProjectionType": index.get("projectionType", "ALL")}
        if index.get("nonKeyAttributes"):
            projection["NonKeyAttributes"] = index["nonKeyAttributes"]
        gsi: dict[str, Any] = {"IndexName": index["name"], "KeySchema": schema, "Projection": projection}
        if provisioned:
            gsi["ProvisionedThroughput"] = throughput
        gsis.append(gsi)
    if gsis:
        request["GlobalSecondaryIndexes"] = gsis
    lsis = []
    for index in i.get("localSecondaryIndexes") or []:
        projection = {"ProjectionType": index.get("projectionType", "ALL")}
        if index.get("nonKeyAttributes"):
            projection["NonKeyAttributes"] = index["nonKeyAttributes"]
        lsis.append(
            {
                "IndexName": index["name"],
                "Projection": projection,
                "KeySchema": [
                    keys[0],
                    {"AttributeName": index["rangeKey"], "KeyType": "RANGE"},
                ],
            }
        )
    if lsis:
        request["LocalSecondaryIndexes"] = lsis
    if i.get("streamEnabled"):
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": i.get("streamViewType", "NEW_AND_OLD_IMAGES"),
        }
    ddb = ctx.client("dynamodb")
    table = ddb.create_table(**request)["TableDescription"]
    ttl = i.get("ttl") or {}
    if ttl.get("enabled") and ttl.get("attributeName"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]}
        )
    if (i.get("pointInTimeRecovery") or {}).get("enabled"):
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    outputs = {**i, "name": name, "arn": table["TableArn"], "billingMode": request["BillingMode"]}
    if table.get("LatestStreamArn"):
        outputs["streamArn"] = table["LatestStreamArn"]
        outputs["streamLabel"] = table.get("LatestStreamLabel", "")
    return name, outputs


HANDLERS = {"aws:dynamodb/table:Table": table}
