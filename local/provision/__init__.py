"""Provisioners of the resources the program declares, one module per AWS service.

Each module maps Pulumi resource types to functions `(ctx, args) -> (id, outputs)`
(`local.provision.context`). Where moto implements the service (DynamoDB, S3, IAM, CloudWatch
Logs, Lambda, Step Functions, EventBridge, SQS, Cognito user pools) the resource is created there through boto3, so
handler code and the state machine find it; API Gateway and AppSync pieces are only recorded in
the registry (`local.registry`), because the local stack serves those APIs itself.
"""

from __future__ import annotations

from local.provision import (
    apigateway,
    appsync,
    cognito,
    dynamodb,
    events,
    iam,
    lambda_,
    logs,
    s3,
    sqs,
    stepfunctions,
)
from local.provision.context import Context, Provisioner, generic

PROVISIONERS: dict[str, Provisioner] = {
    **dynamodb.HANDLERS,
    **s3.HANDLERS,
    **iam.HANDLERS,
    **logs.HANDLERS,
    **lambda_.HANDLERS,
    **stepfunctions.HANDLERS,
    **events.HANDLERS,
    **apigateway.HANDLERS,
    **sqs.HANDLERS,
    **appsync.HANDLERS,
    **cognito.HANDLERS,
}

__all__ = ["PROVISIONERS", "Context", "Provisioner", "generic"]
