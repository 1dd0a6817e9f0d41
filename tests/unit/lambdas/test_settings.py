"""aiwf.settings: the one reader of the function environment, typed by `schema/settings.json`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aiwf import settings

SETTINGS_MODULE = Path(settings.__file__).read_text()


def test_every_declared_setting_is_read_by_the_runtime_or_its_library() -> None:
    """A declared variable nothing reads is a setting infra would deploy for nothing."""
    read = set(re.findall(r'read\("(\w+)"\)', SETTINGS_MODULE))
    for key, declared in settings.settings_schema().items():
        assert key in read or declared.get("readBy"), f"{key} is declared but aiwf.settings never reads it"
    assert read <= set(settings.settings_schema()), "read() of an undeclared key"


def test_unset_and_empty_take_the_default() -> None:
    assert settings.read("continueAfterEvents", {}) == 20_000
    assert settings.read("continueAfterEvents", {"CONTINUE_AFTER_EVENTS": ""}) == 20_000
    assert settings.read("stateMachineArn", {}) == ""
    assert settings.read("egressDenyHosts", {}) == ()


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("continueAfterEvents", "50", 50),
        ("expressBudgetSeconds", "0.5", 0.5),
        ("egressAllowLoopback", "true", True),
        ("egressAllowLoopback", "TRUE", True),
        ("egressAllowLoopback", "yes", False),
        ("egressDenyHosts", " a.example, ,*.b.example ", ("a.example", "*.b.example")),
        ("llmEndpoint", "http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
    ],
)
def test_values_parse_as_their_declared_type(key: str, text: str, value: object) -> None:
    assert settings.read(key, {settings.environment_name(key): text}) == value


def test_a_value_outside_the_enum_takes_the_default() -> None:
    assert settings.read("defaultEngine", {"DEFAULT_ENGINE": "temporal"}) == "stepfunctions"
    assert settings.read("defaultEngine", {"DEFAULT_ENGINE": "durable"}) == "durable"
    assert settings.read("llmProvider", {"LLM_PROVIDER": "gpt"}) == "bedrock"


def test_a_required_setting_that_is_unset_names_its_variable() -> None:
    with pytest.raises(KeyError, match="GRAPHQL_URL"):
        settings.read("graphqlUrl", {})
    assert settings.read("graphqlUrl", {"GRAPHQL_URL": "https://api.example/graphql"}) == "https://api.example/graphql"


def test_an_undeclared_setting_is_an_error() -> None:
    with pytest.raises(KeyError):
        settings.read("stateMachinArn", {})


def test_accessors_read_the_environment_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_BACKOFF_SECONDS", "5")
    monkeypatch.delenv("REPLAY_BACKOFF_MAX_SECONDS", raising=False)
    assert settings.replay_backoff_seconds() == (5, 900)
    monkeypatch.setenv("EXPRESS_BUDGET_SECONDS", "3")
    assert settings.express_budget_seconds() == 3.0
    monkeypatch.setenv("EXPRESS_BUDGET_SECONDS", "4")
    assert settings.express_budget_seconds() == 4.0
    monkeypatch.setenv("EGRESS_DENY_HOSTS", "x.example")
    assert settings.egress_settings().deny_hosts == ("x.example",)


def test_get_settings_reads_the_store_and_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKS_TABLE", "aiwf-test-tasks")
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:m")
    monkeypatch.setenv("STAGE", "test")
    settings.get_settings.cache_clear()
    try:
        found = settings.get_settings()
        assert (found.tasks_table, found.stage) == ("aiwf-test-tasks", "test")
        assert settings.standard_execution_arn("t-1") == "arn:aws:states:us-east-1:123456789012:execution:m:t-1"
    finally:
        settings.get_settings.cache_clear()
