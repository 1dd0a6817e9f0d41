"""Pulumi mock-runtime plumbing shared by the local stack and the infra tests."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import rpc


def unsecret(value: Any) -> Any:
    """Secret inputs reach mocks wrapped as `{<sig key>: <secret sig>, "value": ...}`."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"]
    return value
