"""The stage's end users: a Cognito user pool whose ID tokens both APIs accept.

Users sign in to the pool (SRP from a browser or the CLI; an operator may sign one in with
ADMIN_USER_PASSWORD_AUTH), and the pool's ID token names the user's tenant in `custom:tenant`.
The tenant decides which tasks a user sees, so users can never set it themselves: the app
client's write attributes leave it out, and only an administrator (AdminCreateUser /
AdminUpdateUserAttributes, an IAM call) gives a user one. Self sign-up is off for the same reason:
a user exists because an operator created it in a tenant. The app client has no secret, because
its callers (the console, the CLI) cannot keep one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .config import StageConfig

TENANT_ATTRIBUTE = "tenant"  # the token's claim is `custom:tenant`
AUTH_FLOWS = ("ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH")
# What a signed-in user may change about itself: never its tenant.
USER_WRITABLE_ATTRIBUTES = ("email", "name")
USER_READABLE_ATTRIBUTES = ("email", "email_verified", "name", f"custom:{TENANT_ATTRIBUTE}")


@dataclass(frozen=True)
class IdentityArgs:
    # Longest tenant id an administrator may give a user (the claim is a task record's tenantId).
    tenant_max_length: int = 64
    # How long an ID token (and an access token) is valid; refresh tokens last `refresh_token_days`.
    id_token_minutes: int = 60
    refresh_token_days: int = 30


class Identity(pulumi.ComponentResource):
    """The user pool and its one app client."""

    user_pool: aws.cognito.UserPool
    client: aws.cognito.UserPoolClient
    user_pool_id: pulumi.Output[str]
    client_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: IdentityArgs, config: StageConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aiwf:identity:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=config.retain_on_delete)
        self.user_pool = aws.cognito.UserPool(
            name,
            name=config.name("users"),
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(allow_admin_create_user_only=True),
            schemas=[
                aws.cognito.UserPoolSchemaArgs(
                    name=TENANT_ATTRIBUTE,
                    attribute_data_type="String",
                    mutable=True,
                    developer_only_attribute=False,
                    string_attribute_constraints=aws.cognito.UserPoolSchemaStringAttributeConstraintsArgs(
                        min_length="1", max_length=str(args.tenant_max_length)
                    ),
                )
            ],
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=False,
                temporary_password_validity_days=7,
            ),
            deletion_protection="ACTIVE" if config.retain_on_delete else "INACTIVE",
            opts=child,
        )
        self.client = aws.cognito.UserPoolClient(
            f"{name}-client",
            name=config.name("clients"),
            user_pool_id=self.user_pool.id,
            generate_secret=False,
            explicit_auth_flows=list(AUTH_FLOWS),
            read_attributes=list(USER_READABLE_ATTRIBUTES),
            write_attributes=list(USER_WRITABLE_ATTRIBUTES),
            prevent_user_existence_errors="ENABLED",
            id_token_validity=args.id_token_minutes,
            access_token_validity=args.id_token_minutes,
            refresh_token_validity=args.refresh_token_days,
            token_validity_units=aws.cognito.UserPoolClientTokenValidityUnitsArgs(
                id_token="minutes", access_token="minutes", refresh_token="days"
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.user_pool_id = self.user_pool.id
        self.client_id = self.client.id
        self.register_outputs({"userPoolId": self.user_pool_id, "userPoolClientId": self.client_id})
