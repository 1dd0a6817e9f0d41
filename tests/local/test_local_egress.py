"""The local stack's egress settings: loopback allowed for the examples' stubs, never its own port."""

from __future__ import annotations

import json

from local.stack import _local_egress


def _egress(config: dict[str, str]) -> dict:
    return json.loads(config["ai-workflows:egress"])


def test_loopback_is_allowed_and_the_stacks_own_port_is_denied_on_top_of_the_stage_list() -> None:
    config = {"ai-workflows:egress": json.dumps({"allowLoopback": False, "denyHosts": ["billing.example.com"]})}
    _local_egress("ai-workflows", config, "127.0.0.1", 4000)
    assert _egress(config) == {"allowLoopback": True, "denyHosts": ["billing.example.com", "127.0.0.1:4000"]}


def test_a_stage_without_egress_settings_still_gets_them() -> None:
    config: dict[str, str] = {}
    _local_egress("ai-workflows", config, "127.0.0.1", 5123)
    assert _egress(config) == {"allowLoopback": True, "denyHosts": ["127.0.0.1:5123"]}


def test_a_stack_on_every_interface_denies_its_port_on_loopback() -> None:
    config: dict[str, str] = {}
    _local_egress("ai-workflows", config, "0.0.0.0", 4000)
    assert _egress(config)["denyHosts"] == ["127.0.0.1:4000"]


def test_a_stack_served_by_name_denies_the_name_and_its_addresses() -> None:
    config: dict[str, str] = {}
    _local_egress("ai-workflows", config, "localhost", 4000)
    deny = _egress(config)["denyHosts"]
    assert deny[0] == "localhost:4000" and "127.0.0.1:4000" in deny


def test_a_malformed_setting_is_left_for_the_config_check_to_report() -> None:
    config = {"ai-workflows:egress": "not json"}
    _local_egress("ai-workflows", config, "127.0.0.1", 4000)
    assert config == {"ai-workflows:egress": "not json"}
