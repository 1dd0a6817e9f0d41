"""The APPSYNC_JS runner on its own: the deployed module text, run by QuickJS."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.js_resolver import JsResolver, ResolverError

ROOT = Path(__file__).resolve().parents[2]


def test_the_deployed_update_resolver_echoes_its_input_with_json_text() -> None:
    js = JsResolver((ROOT / "schema/resolvers/updateWorkflowState.js").read_text())
    state = {"taskId": "t1", "seq": 3, "output": {"a": [1]}, "error": {"errorName": "E", "errorDetails": "x"}}
    value = js.resolve_none({"arguments": {"input": state}, "args": {"input": state}})
    assert value["taskId"] == "t1" and value["seq"] == 3
    assert value["output"] == '{"a":[1]}' and value["waitingFor"] is None
    assert value["error"] == {"errorName": "E", "errorDetails": '"x"'}


def test_early_return_and_util_helpers() -> None:
    js = JsResolver(
        "export function request(ctx) { if (ctx.args.stop) { runtime.earlyReturn({id: util.autoId()}); }"
        " return {payload: {empty: util.isNullOrEmpty(ctx.args.name)}}; }\n"
        "export function response(ctx) { return ctx.result; }"
    )
    early = js.resolve_none({"args": {"stop": True}})
    assert len(early["id"]) == 36
    assert js.resolve_none({"args": {"name": ""}}) == {"empty": True}


def test_a_runtime_error_becomes_a_code_error() -> None:
    js = JsResolver("export function request(ctx) { return ctx.args.missing.field; }\nexport function response(ctx) {}")
    with pytest.raises(ResolverError) as caught:
        js.resolve_none({"args": {}})
    assert caught.value.error_type == "Code" and "undefined" in caught.value.message


def test_a_resolver_that_never_returns_is_stopped_and_the_next_call_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("local.js_resolver.TIME_LIMIT_SECONDS", 0.05)
    js = JsResolver(
        "export function request(ctx) { if (ctx.args.spin) { for (;;) {} } return {payload: 1}; }\n"
        "export function response(ctx) { return ctx.result; }"
    )
    with pytest.raises(ResolverError) as caught:
        js.resolve_none({"args": {"spin": True}})
    assert caught.value.error_type == "Code" and "interrupted" in caught.value.message
    assert js.resolve_none({"args": {}}) == 1
