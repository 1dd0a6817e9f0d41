"""The caller model (aiwf.callers): each real event shape the gateways hand the runtime, and the
catalogue's check of a caller kind per operation."""

from __future__ import annotations

from typing import Any

import pytest

from aiwf.callers import Caller, allowed_kinds, authorize
from aiwf.errors import Forbidden


def rest_event(authorizer: dict[str, Any] | None = None, **identity: Any) -> dict[str, Any]:
    base_identity = {"sourceIp": "1.2.3.4", "userArn": None, "accessKey": None, "apiKey": None, "apiKeyId": None}
    context: dict[str, Any] = {"identity": {**base_identity, **identity}, "stage": "dev"}
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {"httpMethod": "GET", "path": "/tasks", "requestContext": context}


def test_a_rest_user_comes_from_the_authorizer_context() -> None:
    event = rest_event(
        {"caller": "user", "tenant": "acme", "username": "ann", "groups": '["reviewers"]', "principalId": "sub-1"}
    )
    caller = Caller.from_rest(event)
    assert (caller.kind, caller.tenant, caller.username, caller.groups) == ("user", "acme", "ann", ("reviewers",))
    assert caller.principal == "sub-1" and caller.sees("acme") and not caller.sees("other")


def test_a_rest_key_acts_for_default_whatever_the_context_says() -> None:
    event = rest_event({"caller": "key", "tenant": "acme", "username": "", "groups": "[]", "principalId": "apikey:ab"})
    caller = Caller.from_rest(event)
    assert (caller.kind, caller.tenant, caller.groups) == ("key", "default", ())
    assert caller.sees(None) and caller.sees("default") and not caller.sees("acme")


def test_a_rest_user_without_a_tenant_is_refused() -> None:
    with pytest.raises(Forbidden):
        Caller.from_rest(rest_event({"caller": "user", "tenant": "", "username": "x", "groups": "[]"}))


def test_a_rest_iam_identity_is_an_operator() -> None:
    event = rest_event(userArn="arn:aws:iam::123456789012:user/ci", accessKey="AKIA", accountId="123456789012")
    caller = Caller.from_rest(event)
    assert caller.kind == "operator" and caller.tenant is None and caller.sees("any")
    assert caller.principal == "arn:aws:iam::123456789012:user/ci"


def test_a_rest_event_with_no_checked_credential_may_call_only_a_token_operation() -> None:
    """Every REST method but the callbacks has an authorizer or AWS_IAM: an event with neither came
    through an open method, and its caller may do nothing a token does not allow."""
    caller = Caller.from_rest(rest_event(apiKey="secret-value", apiKeyId="abcdefghij"))
    assert (caller.kind, caller.tenant) == ("token", None)
    assert authorize("callbackTask", "rest", caller) is caller
    with pytest.raises(Forbidden):
        authorize("getTask", "rest", caller)


def test_an_appsync_cognito_identity_is_a_user_of_its_claim() -> None:
    identity = {
        "sub": "sub-2",
        "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x",
        "username": "bob",
        "claims": {"custom:tenant": "globex", "cognito:username": "bob", "token_use": "id"},
        "sourceIp": ["1.2.3.4"],
        "defaultAuthStrategy": "ALLOW",
        "groups": ["ops"],
    }
    caller = Caller.from_appsync({"identity": identity, "arguments": {}})
    assert (caller.kind, caller.tenant, caller.username, caller.groups) == ("user", "globex", "bob", ("ops",))


def test_an_appsync_user_without_a_tenant_claim_is_refused() -> None:
    with pytest.raises(Forbidden):
        Caller.from_appsync({"identity": {"sub": "s", "claims": {"cognito:username": "x"}}})


def test_an_appsync_iam_identity_is_an_operator_and_a_null_one_the_key() -> None:
    iam = {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:user/ci", "username": "AKIA"}
    iam |= {"sourceIp": ["1.2.3.4"], "cognitoIdentityPoolId": None}
    assert Caller.from_appsync({"identity": iam}).kind == "operator"
    key = Caller.from_appsync({"identity": None})
    assert (key.kind, key.tenant) == ("key", "default")


def test_start_tenant_operators_choose_others_keep_their_own() -> None:
    assert Caller.operator().tenant_for_start(None) == "default"
    assert Caller.operator().tenant_for_start("b") == "b"
    user = Caller("user", "a")
    assert user.tenant_for_start(None) == "a" and user.tenant_for_start("a") == "a"
    with pytest.raises(Forbidden):
        user.tenant_for_start("b")


def test_authorize_follows_the_catalogue_with_iam_read_as_operator() -> None:
    assert "operator" in allowed_kinds("putFlow", "graphql")
    authorize("putFlow", "graphql", Caller.operator())
    with pytest.raises(Forbidden) as refused:
        authorize("putFlow", "graphql", Caller.api_key())
    assert refused.value.status == 403 and refused.value.code == "FORBIDDEN"
    authorize("getTask", "graphql", Caller.api_key())
    with pytest.raises(Forbidden):
        authorize("getTask", "rest", Caller("token", None))


def test_an_operation_open_to_token_holders_admits_any_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """The callbacks: no security on the method, the body's token is what the handler checks."""
    from aiwf import callers

    monkeypatch.setattr(callers, "allowed_kinds", lambda operation_id, api: frozenset({"token"}))
    rest_open = Caller.from_rest(rest_event())
    assert authorize("resumeTask", "rest", rest_open) is rest_open
