"""The stage config's llm provider keys (pure)."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_stage_config


def test_llm_provider_defaults_to_bedrock_and_openai_needs_an_endpoint():
    assert parse_stage_config("dev", {}).llm_provider == "bedrock"
    local = parse_stage_config("dev", {"llmProvider": "local"})
    assert local.llm_provider == "local" and local.llm_endpoint is None
    with pytest.raises(ConfigError, match="llmEndpoint"):
        parse_stage_config("dev", {"llmProvider": "openai"})
    with pytest.raises(ConfigError, match="llmProvider"):
        parse_stage_config("dev", {"llmProvider": "gpt"})
    chosen = parse_stage_config("dev", {"llmProvider": "openai", "llmEndpoint": "http://127.0.0.1:11434/v1"})
    assert chosen.llm_endpoint == "http://127.0.0.1:11434/v1"
