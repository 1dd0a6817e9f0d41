"""The stage's user pool (infra/identity.py): users carry a tenant only an administrator sets."""

from __future__ import annotations

from tests.infra.stackmodel import Stack

USER_POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"


def test_the_pool_declares_the_tenant_attribute_and_no_self_sign_up(stack: Stack) -> None:
    pool = stack.one(USER_POOL)
    assert pool.inputs["name"] == f"aiwf-{stack.stage}-users"
    (tenant,) = [s for s in pool.inputs["schemas"] if s["name"] == "tenant"]
    assert tenant["attributeDataType"] == "String" and tenant["developerOnlyAttribute"] is False
    assert pool.inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is True


def test_users_cannot_write_their_tenant(stack: Stack) -> None:
    client = stack.one(CLIENT)
    assert client.inputs["userPoolId"] == stack.one(USER_POOL).id
    assert "custom:tenant" not in client.inputs["writeAttributes"]
    assert "custom:tenant" in client.inputs["readAttributes"]
    assert client.inputs["generateSecret"] is False
    assert set(client.inputs["explicitAuthFlows"]) == {
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    }


def test_the_pool_and_its_client_are_the_outputs(stack: Stack) -> None:
    assert stack.outputs["userPoolId"] == stack.one(USER_POOL).id
    assert stack.outputs["userPoolClientId"] == stack.one(CLIENT).id
