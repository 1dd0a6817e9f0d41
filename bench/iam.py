"""What authorizing every call costs on the embedded AWS: one call's round trip, with the policies
checked (a role session, as a function's worker signs) and without (the same calls, the check
switched off), side by side in one process.

The calls are those of a task's step: a GetItem, and the TransactWriteItems of a task change (two
Puts, authorized item by item). Figures are printed, never asserted.

    .venv/bin/python -m bench.iam [--calls 500] [--small]

`--small` makes 20 calls per kind and setting (the suite runs it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import boto3  # noqa: E402

from local import embedded  # noqa: E402
from local.iam_enforcement import LAMBDA_SERVICE  # noqa: E402
from local.moto_glue import iam as moto_iam  # noqa: E402

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _timed(call: Callable[[], Any], calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: list[float]) -> str:
    ordered = sorted(times)
    return f"p50 {statistics.median(ordered):.2f} ms  p99 {ordered[int(len(ordered) * 0.99) - 1]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per kind and setting")
    parser.add_argument("--small", action="store_true", help="20 calls per kind and setting (what the suite runs)")
    args = parser.parse_args()
    if args.small:
        args.calls = 20
    aws = embedded.acquire()
    try:
        admin = boto3.client("dynamodb", endpoint_url=aws.url, region_name="us-east-1")
        tables = [f"bench-iam-{name}-{uuid.uuid4().hex[:6]}" for name in ("tasks", "history")]
        for table in tables:
            admin.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        arns = [f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}" for table in tables]
        iam = boto3.client("iam", endpoint_url=aws.url, region_name="us-east-1")
        role = f"bench-iam-{uuid.uuid4().hex[:6]}"
        role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        # a policy the size of process-steps' (eight statements), the allowing one last
        filler = [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::bench-{n}/*"} for n in range(6)
        ]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                *filler,
                {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": arns},
            ],
        }
        iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=json.dumps(policy))
        creds = aws.iam.role_credentials(role_arn, LAMBDA_SERVICE, role)
        worker = boto3.client(
            "dynamodb",
            endpoint_url=aws.url,
            region_name="us-east-1",
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            aws_session_token=creds.token,
        )
        counter = iter(range(10**9))

        def get_item() -> None:
            worker.get_item(TableName=tables[0], Key={"pk": {"S": "k"}})

        def transact() -> None:
            key = str(next(counter))
            worker.transact_write_items(
                TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": key}}}} for table in tables]
            )

        print(f"{args.calls} calls each, signed as a role session")
        for name, call in (("GetItem", get_item), ("TransactWriteItems (2 Puts)", transact)):
            _timed(call, 20)  # warm the connection
            results = {}
            for enforce in (False, True, False, True):
                moto_iam.enforce(aws.moto.port, enforce)
                results.setdefault(enforce, []).extend(_timed(call, args.calls // 2))
            print(f"  {name:28s} authorized: {_summary(results[True])}   not checked: {_summary(results[False])}")
        moto_iam.enforce(aws.moto.port, aws.iam.enforcing)
    finally:
        embedded.release(aws)


if __name__ == "__main__":
    main()
