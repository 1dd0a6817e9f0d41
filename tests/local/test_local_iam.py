"""IAM authorization on the embedded AWS (local/moto_glue/iam.py, local/iam_enforcement.py): the
action names and resource ARNs IAM checks, item by item for transactions, signatures recomputed,
and the credentials each caller gets. Calls are made here with a role's session credentials, as a
function's worker holds them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from local import embedded
from local.iam_enforcement import LAMBDA_SERVICE, RoleNotAssumable
from tests.local.conftest import make_zip

ACCOUNT = "123456789012"
TRUST_LAMBDA = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    shared = embedded.acquire()
    try:
        yield shared
    finally:
        embedded.release(shared)


def admin(aws: Any, service: str) -> Any:
    return boto3.client(service, endpoint_url=aws.url, region_name="us-east-1")


def as_role(aws: Any, statements: list[dict[str, Any]], service: str) -> Any:
    """A client signed with a session of a new role allowed exactly `statements`."""
    name = f"iam-test-{uuid.uuid4().hex[:8]}"
    iam = admin(aws, "iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_LAMBDA)["Role"]["Arn"]
    if statements:
        document = {"Version": "2012-10-17", "Statement": statements}
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    creds = aws.iam.role_credentials(arn, LAMBDA_SERVICE, name)
    return client_with(aws, service, creds)


def client_with(aws: Any, service: str, creds: Credentials) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )


def table(aws: Any, index: bool = False) -> str:
    name = f"iam-{uuid.uuid4().hex[:8]}"
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if index:
        request["AttributeDefinitions"].append({"AttributeName": "g", "AttributeType": "S"})
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    admin(aws, "dynamodb").create_table(**request)
    return name


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}"


def denied(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException", caught.value.response
    return str(caught.value)


def put(name: str, key: str) -> dict[str, Any]:
    return {"Put": {"TableName": name, "Item": {"pk": {"S": key}}}}


def test_a_transaction_is_authorized_item_by_item_with_each_items_action(aws: Any) -> None:
    first, second = table(aws), table(aws)
    only_first = as_role(
        aws, [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table_arn(first)}], "dynamodb"
    )
    message = denied(lambda: only_first.transact_write_items(TransactItems=[put(first, "a"), put(second, "a")]))
    assert f"dynamodb:PutItem on resource: {table_arn(second)}" in message
    assert "Item" not in admin(aws, "dynamodb").get_item(TableName=first, Key={"pk": {"S": "a"}})  # nothing written

    both = as_role(
        aws,
        [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": [table_arn(first), table_arn(second)]}],
        "dynamodb",
    )
    both.transact_write_items(TransactItems=[put(first, "b"), put(second, "b")])
    # no dynamodb:TransactWriteItems action exists in IAM, and none was needed


def test_a_query_on_an_index_needs_the_index_arn(aws: Any) -> None:
    name = table(aws, index=True)
    query = {
        "TableName": name,
        "IndexName": "by-g",
        "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": "x"}},
    }
    table_only = as_role(
        aws, [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": table_arn(name)}], "dynamodb"
    )
    assert f"on resource: {table_arn(name)}/index/by-g" in denied(lambda: table_only.query(**query))
    indexes = as_role(
        aws, [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": f"{table_arn(name)}/index/*"}], "dynamodb"
    )
    assert indexes.query(**query)["Items"] == []


def test_lambda_invoke_is_lambda_invoke_function_on_the_function_arn(aws: Any) -> None:
    name = f"iam-fn-{uuid.uuid4().hex[:8]}"
    role = admin(aws, "iam").create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_LAMBDA)["Role"]["Arn"]
    code = make_zip({"app.py": "def handler(event, context):\n    return {'ok': True}\n"})
    arn = admin(aws, "lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": code}
    )["FunctionArn"]
    other = as_role(aws, [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": f"{arn}-other"}], "lambda")
    assert f"lambda:InvokeFunction on resource: {arn}" in denied(lambda: other.invoke(FunctionName=name, Payload=b"{}"))
    allowed = as_role(aws, [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}], "lambda")
    assert json.loads(allowed.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == {"ok": True}


def test_a_presigned_link_is_authorized_as_its_signer(aws: Any) -> None:
    bucket = f"iam-{uuid.uuid4().hex[:8]}"
    admin(aws, "s3").create_bucket(Bucket=bucket)
    admin(aws, "s3").put_object(Bucket=bucket, Key="tasks/a", Body=b"value")
    reader = as_role(
        aws, [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/tasks/*"}], "s3"
    )
    stranger = as_role(aws, [], "s3")
    for client, status in ((reader, 200), (stranger, 403)):
        link = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "tasks/a"}, ExpiresIn=60)
        assert requests.get(link, timeout=10).status_code == status
    assert requests.get(f"{aws.url}/{bucket}/tasks/a", timeout=10).status_code == 403  # unsigned: anonymous


def test_unknown_keys_and_wrong_secrets_are_refused(aws: Any) -> None:
    unknown = client_with(aws, "dynamodb", Credentials("AKIAUNKNOWN000000000", "secret"))
    with pytest.raises(ClientError) as caught:
        unknown.list_tables()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    wrong = client_with(aws, "dynamodb", Credentials("testing", "not-the-secret"))
    with pytest.raises(ClientError) as caught:
        wrong.list_tables()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "TableNames" in admin(aws, "dynamodb").list_tables()  # the local credentials: the admin


def test_a_service_gets_role_credentials_only_when_the_trust_policy_names_it(aws: Any) -> None:
    name = f"iam-trust-{uuid.uuid4().hex[:8]}"
    arn = admin(aws, "iam").create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_LAMBDA)["Role"]["Arn"]
    assert aws.iam.role_credentials(arn, LAMBDA_SERVICE, "t").token
    with pytest.raises(RoleNotAssumable, match="does not name states"):
        aws.iam.role_credentials(arn, "states.amazonaws.com", "t")
    with pytest.raises(RoleNotAssumable, match="no such role"):
        aws.iam.role_credentials(f"{arn}-gone", LAMBDA_SERVICE, "t")


def test_a_browsers_preflight_of_a_sign_in_is_answered_without_a_signature(aws: Any) -> None:
    """The console's sign-in (amazon-cognito-identity-js) is a cross-origin POST with `X-Amz-Target`:
    the browser first sends an unsigned `OPTIONS /` naming only the headers. It is answered with
    the CORS headers AWS answers it with, not refused as an anonymous S3 ListBuckets; a preflight
    that announces no target is still moto's (S3 and its bucket CORS rules)."""
    origin = "http://127.0.0.1:4100"
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "cache-control,content-type,x-amz-target,x-amz-user-agent",
    }
    answer = requests.options(f"{aws.url}/", headers=preflight, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert "x-amz-target" in answer.headers["Access-Control-Allow-Headers"].lower()
    no_target = {**preflight, "Access-Control-Request-Headers": "content-type"}
    assert requests.options(f"{aws.url}/", headers=no_target, timeout=10).status_code == 403


def test_a_user_pool_sign_in_needs_no_signature_and_admin_sign_in_needs_one(aws: Any) -> None:
    """SRP sign-in and refresh are calls AWS serves unsigned (`aiwf login`, the console): both
    steps of USER_SRP_AUTH pass; ADMIN_USER_PASSWORD_AUTH is an IAM action, refused unsigned."""
    from aiwf_sdk import SignInError, UserPool, sign_in
    from aiwf_sdk.session import SessionAuth

    cognito = admin(aws, "cognito-idp")
    pool_id = cognito.create_user_pool(
        PoolName=f"iam-test-{uuid.uuid4().hex[:8]}",
        Schema=[{"Name": "tenant", "AttributeDataType": "String"}],
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="c")["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(
        UserPoolId=pool_id, Username="ada", UserAttributes=[{"Name": "custom:tenant", "Value": "acme"}]
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="ada", Password="Pass-word-1", Permanent=True)

    pool = UserPool(pool_id, client_id, endpoint_url=aws.url)
    signed_in = sign_in(pool, "ada", "Pass-word-1")
    assert signed_in.tenant == "acme"
    with pytest.raises(SignInError, match="Incorrect username or password"):  # SRP proves it (moto_glue.cognito)
        sign_in(pool, "ada", "Pass-word-2")
    assert SessionAuth(replace(signed_in, expires_at=0), pool).id_token()  # the refresh, unsigned too

    unsigned = boto3.client(
        "cognito-idp", endpoint_url=aws.url, region_name="us-east-1", config=Config(signature_version=UNSIGNED)
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        unsigned.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "ada", "PASSWORD": "Pass-word-1"},
        )
    assert (
        sign_in(
            replace(pool, credentials={"accessKeyId": "testing", "secretAccessKey": "testing"}),
            "ada",
            "Pass-word-1",
            admin=True,
        ).tenant
        == "acme"
    )
