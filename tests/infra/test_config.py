"""The typed stage config: bad values stop the program before anything is planned, with a clear message."""

from __future__ import annotations

import re

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from infra.config import ConfigError, StageConfig, parse_stage_config
from tests.infra.harness import raw_stage_config
from tests.infra.stackmodel import REPO_ROOT, STAGES

PREFIX = "ai-workflows:"


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _project_settings(stage: str) -> dict[str, str]:
    """`Pulumi.<stage>.yaml`'s project keys as the engine passes them: short name -> string."""
    return {k.removeprefix(PREFIX): v for k, v in raw_stage_config(stage).items() if k.startswith(PREFIX)}


def _error(stage: str, raw: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stage_config(stage, raw)
    return str(caught.value)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_files_parse_and_every_key_takes_effect(stage: str) -> None:
    """A misspelt key would be ignored and the default used: every YAML key must land in the config."""
    settings = _project_settings(stage)
    config = parse_stage_config(stage, settings)
    assert isinstance(config, StageConfig)
    assert config.stage == stage
    typed = yaml.safe_load((REPO_ROOT / f"Pulumi.{stage}.yaml").read_text())["config"]
    for key in settings:
        field = _snake(key)
        assert field in StageConfig.model_fields, f"{PREFIX}{key} in Pulumi.{stage}.yaml is not a known setting"
        value = getattr(config, field)
        if isinstance(value, BaseModel):  # a structured key (egress): compared as the YAML wrote it
            value = value.model_dump(mode="json", by_alias=True)
        assert value == typed[PREFIX + key], key


def test_defaults_apply_when_a_key_is_absent() -> None:
    """An absent key takes the model default (unset values are not read as empty strings)."""
    assert parse_stage_config("dev", {}) == StageConfig(stage="dev")
    assert parse_stage_config("dev", {"tracing": None}) == StageConfig(stage="dev")


@pytest.mark.parametrize("days", ["8", "0", "-1", "10000"])
def test_rejects_a_retention_cloudwatch_does_not_offer(days: str) -> None:
    message = _error("dev", {"logRetentionDays": days})
    assert "ai-workflows:logRetentionDays" in message
    assert "must be one of" in message and ", 14," in message, "the message lists the allowed values"


@pytest.mark.parametrize("value", ["yes", "1", "", "on", "True-ish"])
def test_rejects_a_bool_that_is_not_true_or_false(value: str) -> None:
    """`yes`/`1` are not YAML-safe booleans in Pulumi config: only true/false."""
    message = _error("prod", {"retainOnDelete": value})
    assert "ai-workflows:retainOnDelete" in message
    assert "expected true or false" in message
    assert repr(value) in message, "the message shows the value it got"


@pytest.mark.parametrize("value", ["TRUE", "False", " true "])
def test_accepts_true_and_false_in_any_case(value: str) -> None:
    assert parse_stage_config("dev", {"tracing": value}).tracing is (value.strip().lower() == "true")


@pytest.mark.parametrize(
    ("timeout", "bound"), [("4", "greater than or equal to 5"), ("901", "less than or equal to 900")]
)
def test_rejects_an_out_of_range_lambda_timeout(timeout: str, bound: str) -> None:
    message = _error("dev", {"lambdaTimeoutSeconds": timeout})
    assert "ai-workflows:lambdaTimeoutSeconds" in message
    assert bound in message


def test_rejects_a_non_number() -> None:
    message = _error("dev", {"lambdaMemoryMb": "lots"})
    assert "ai-workflows:lambdaMemoryMb: expected a number, got 'lots'" in message


def test_rejects_an_unknown_log_level() -> None:
    message = _error("dev", {"logLevel": "TRACE"})
    assert "ai-workflows:logLevel" in message and "DEBUG" in message


def test_names_the_stage_in_the_message() -> None:
    assert "stage 'prod'" in _error("prod", {"lambdaMemoryMb": "64"})


def test_lists_several_bad_values_at_once() -> None:
    """One run shows every problem: fixing them one `pulumi up` at a time is slow."""
    message = _error("dev", {"logRetentionDays": "8", "lambdaMemoryMb": "64", "throttleRateLimit": "0"})
    for key in ("logRetentionDays", "lambdaMemoryMb", "throttleRateLimit"):
        assert f"ai-workflows:{key}" in message
    assert len(message.splitlines()) == 4, message


def test_lists_several_unparseable_values_at_once() -> None:
    message = _error("dev", {"tracing": "maybe", "lambdaTimeoutSeconds": "abc"})
    assert "ai-workflows:tracing" in message and "ai-workflows:lambdaTimeoutSeconds" in message


def test_lists_unparseable_and_out_of_range_values_together() -> None:
    message = _error("dev", {"tracing": "maybe", "logRetentionDays": "8", "lambdaTimeoutSeconds": "901"})
    for key in ("tracing", "logRetentionDays", "lambdaTimeoutSeconds"):
        assert f"ai-workflows:{key}" in message, message


def test_config_is_immutable() -> None:
    """Components read one validated config; nothing may change it after validation."""
    config = parse_stage_config("dev", {})
    with pytest.raises(ValidationError, match="frozen"):
        config.tracing = True  # type: ignore[misc]


def test_egress_is_secure_by_default() -> None:
    egress = parse_stage_config("prod", {}).egress
    assert (egress.allow_loopback, egress.allow_private_networks, egress.deny_hosts) == (False, False, ())


def test_egress_settings_parse_from_the_structured_key() -> None:
    raw = '{"allowLoopback": true, "denyHosts": ["*.corp.example", "10.1.0.0/16", "[::1]:4000", "Api.Example:8443"]}'
    egress = parse_stage_config("dev", {"egress": raw}).egress
    assert egress.allow_loopback is True and egress.allow_private_networks is False
    assert egress.deny_hosts == ("*.corp.example", "10.1.0.0/16", "[::1]:4000", "api.example:8443")
    assert egress.environment() == {
        "EGRESS_ALLOW_LOOPBACK": "true",
        "EGRESS_ALLOW_PRIVATE_NETWORKS": "false",
        "EGRESS_DENY_HOSTS": "*.corp.example,10.1.0.0/16,[::1]:4000,api.example:8443",
    }


def test_limits_parse_from_the_structured_key_and_default_to_the_documented_values() -> None:
    assert parse_stage_config("prod", {}).limits.environment() == {
        "LIMITS_TEMPLATE_MS": "1000",
        "LIMITS_RESPONSE_BYTES": "1048576",
    }
    limits = parse_stage_config("dev", {"limits": '{"templateMs": 250, "responseBytes": 4096}'}).limits
    assert (limits.template_ms, limits.response_bytes) == (250, 4096)
    with pytest.raises(ConfigError, match=r"ai-workflows:limits\.templateMs"):
        parse_stage_config("dev", {"limits": '{"templateMs": 0}'})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"allowLoopback": "yes"}', "ai-workflows:egress.allowLoopback: Input should be a valid boolean"),
        ('{"allowLoopbak": true}', "ai-workflows:egress.allowLoopbak: Extra inputs are not permitted"),
        ('{"denyHosts": ["http://x.example"]}', "ai-workflows:egress.denyHosts"),
        ('{"denyHosts": ["10.0.0.0/33"]}', "not a host name"),
        ('{"denyHosts": ["api.example.com:99999"]}', "not a host name"),
        ('{"denyHosts": ["[::1]:0"]}', "not a host name"),
        ('["allowLoopback"]', "ai-workflows:egress: expected an object"),
        ("allowLoopback", "ai-workflows:egress: expected an object"),
    ],
)
def test_rejects_a_bad_egress_setting_naming_the_nested_key(raw: str, expected: str) -> None:
    assert expected in _error("dev", {"egress": raw})
