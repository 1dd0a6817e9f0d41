"""Users of the stage's user pool for tests: created by an operator, signed in, their ID token.

On the local stack the pool lives in the embedded AWS (`awsEndpointUrl`); an administrator (the
`awsCredentials` output) creates the user with its tenant, gives it a permanent password and
signs it in with ADMIN_USER_PASSWORD_AUTH, as docs/security.md tells an operator to.
"""

from __future__ import annotations

from typing import Any

import boto3

PASSWORD = "Local-Passw0rd-1"


def identity_provider(outputs: dict[str, Any]) -> Any:
    """A cognito-idp client of the stack's embedded AWS, signed as its administrator."""
    credentials = outputs["awsCredentials"]
    return boto3.client(
        "cognito-idp",
        endpoint_url=outputs["awsEndpointUrl"],
        region_name=credentials["region"],
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
    )


def sign_in(outputs: dict[str, Any], username: str, tenant: str) -> str:
    """A new user of `tenant` (claim `custom:tenant`), signed in: its ID token."""
    idp, pool = identity_provider(outputs), outputs["userPoolId"]
    attributes = [{"Name": "custom:tenant", "Value": tenant}]
    idp.admin_create_user(UserPoolId=pool, Username=username, UserAttributes=attributes, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username=username, Password=PASSWORD, Permanent=True)
    answer = idp.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=outputs["userPoolClientId"],
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    return answer["AuthenticationResult"]["IdToken"]
