"""The llm step's providers: deterministic local model, Bedrock Converse request/usage, OpenAI-compatible."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from botocore.stub import Stubber

from aiwf import aws
from aiwf.errors import StepError
from aiwf.llm import call_llm, local_model


def test_local_model_is_deterministic_and_honours_reply_markers():
    assert local_model("m", None, "Classify this. Reply: urgent").text == "urgent"
    first, second = local_model("m", "sys", "hello"), local_model("m", "sys", "hello")
    assert first == second and first.text.startswith("local-")
    assert local_model("other", "sys", "hello").text != first.text


def test_bedrock_converse_request_and_usage(monkeypatch):
    monkeypatch.setenv("LLM_PROVIDER", "bedrock")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.client.cache_clear()
    bedrock = aws.client("bedrock-runtime")
    with Stubber(bedrock) as stub:
        stub.add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": '{"label": "urgent"}'}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
                "metrics": {"latencyMs": 10},
            },
            {
                "modelId": "anthropic.claude-3-haiku",
                "messages": [{"role": "user", "content": [{"text": "Classify: x"}]}],
                "system": [{"text": "be brief"}],
                "inferenceConfig": {"maxTokens": 50},
            },
        )
        step = {
            "model": "anthropic.claude-3-haiku",
            "prompt": "Classify: {{ input.t }}",
            "system": "be brief",
            "maxTokens": 50,
            "outputFormat": "json",
        }
        result, usage = call_llm(step, {"input": {"t": "x"}})
    aws.client.cache_clear()
    assert result == {"label": "urgent"}
    assert usage == {"provider": "bedrock", "model": "anthropic.claude-3-haiku", "inputTokens": 12, "outputTokens": 5}


@pytest.fixture
def openai_server():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            body = json.dumps(
                {
                    "choices": [{"message": {"content": "hi there"}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    server.shutdown()


def test_openai_compatible_endpoint(monkeypatch, openai_server):
    url, seen = openai_server
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("LLM_ENDPOINT", url)
    monkeypatch.setenv("EGRESS_ALLOW_LOOPBACK", "true")  # the model server is on this machine

    result, usage = call_llm({"model": "llama3", "prompt": "say hi", "temperature": 0}, {})

    assert result == "hi there"
    assert usage["inputTokens"] == 3 and usage["outputTokens"] == 2
    path, body = seen[0]
    assert path == "/v1/chat/completions"
    assert body == {"model": "llama3", "messages": [{"role": "user", "content": "say hi"}], "temperature": 0}


def test_the_model_endpoint_goes_through_the_egress_policy(monkeypatch, openai_server):
    """The endpoint is the stage's, but it is still an outbound call: loopback only when allowed."""
    url, seen = openai_server
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("LLM_ENDPOINT", url)
    monkeypatch.delenv("EGRESS_ALLOW_LOOPBACK", raising=False)

    with pytest.raises(StepError) as raised:
        call_llm({"model": "llama3", "prompt": "say hi"}, {})

    assert raised.value.error_name == "EgressDenied" and not raised.value.retryable
    assert seen == []


def test_a_reply_that_is_not_json_is_a_step_error():
    with pytest.raises(StepError) as raised:
        call_llm({"model": "local/x", "prompt": "reply: not json", "outputFormat": "json"}, {})
    assert raised.value.error_name == "LlmOutputNotJson"
