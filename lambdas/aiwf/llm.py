"""The `llm` step: one model call, the prompt rendered from the task context.

Providers, chosen per stage (infra sets `LLM_PROVIDER`, and `LLM_ENDPOINT` for `openai`):
- `bedrock`: Amazon Bedrock Converse (the cloud default);
- `local`: a deterministic local model, so flows run offline and tests are repeatable;
- `openai`: any OpenAI-compatible `/chat/completions` endpoint, e.g. a model server on the
  developer's machine, reached through the egress policy (`aiwf.egress`) like any flow URL.
A model id starting with `local/` always uses the local model, whatever the stage says.

The step's result (at `resultPath`) is the reply text, or the parsed value when the step says
`outputFormat: json`; token usage is returned with it for the runner to record per step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import egress
from .aws import client
from .errors import StepError
from .settings import llm_endpoint, llm_provider
from .templates import render

LOCAL_PREFIX = "local/"
OPENAI_TIMEOUT_SECONDS = 60
# Bedrock errors worth a step-declared retry.
_RETRYABLE_BEDROCK = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "ModelNotReadyException", "InternalServerException"}
)


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int
    output_tokens: int


def _tokens(text: str) -> int:
    return len(text.split())


def local_model(model: str, system: str | None, prompt: str) -> Reply:
    """Deterministic: the text after the prompt's last `reply:` marker, else a stable digest.

    `Classify: {{ doc }} reply: urgent` answers `urgent`; any other prompt answers
    `local-<12 hex digits>` derived from model, system and prompt, the same every time.
    """
    marker = prompt.lower().rfind("reply:")
    if marker >= 0:
        text = prompt[marker + len("reply:") :].strip()
    else:
        digest = hashlib.sha256(f"{model}\n{system or ''}\n{prompt}".encode()).hexdigest()[:12]
        text = f"local-{digest}"
    return Reply(text=text, input_tokens=_tokens(prompt) + _tokens(system or ""), output_tokens=_tokens(text))


def _bedrock(model: str, system: str | None, prompt: str, inference: dict[str, Any]) -> Reply:
    request: dict[str, Any] = {"modelId": model, "messages": [{"role": "user", "content": [{"text": prompt}]}]}
    if system:
        request["system"] = [{"text": system}]
    if inference:
        request["inferenceConfig"] = inference
    try:
        response = client("bedrock-runtime").converse(**request)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        raise StepError(
            "LlmError",
            f"Bedrock {code}: {exc}",
            details={"provider": "bedrock", "code": code},
            retryable=code in _RETRYABLE_BEDROCK,
        ) from exc
    content = response["output"]["message"]["content"]
    text = "".join(part.get("text", "") for part in content)
    usage = response.get("usage", {})
    return Reply(text=text, input_tokens=usage.get("inputTokens", 0), output_tokens=usage.get("outputTokens", 0))


def _openai(endpoint: str, model: str, system: str | None, prompt: str, inference: dict[str, Any]) -> Reply:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": model, "messages": messages}
    if "maxTokens" in inference:
        body["max_tokens"] = inference["maxTokens"]
    if "temperature" in inference:
        body["temperature"] = inference["temperature"]
    try:
        response = egress.request(
            "POST",
            endpoint.rstrip("/") + "/chat/completions",
            headers={"Content-Type": "application/json"},
            body=json.dumps(body).encode(),
            timeout=OPENAI_TIMEOUT_SECONDS,
        )
    except (TimeoutError, OSError) as exc:
        raise StepError(
            "LlmError", f"model endpoint failed: {exc}", details={"provider": "openai"}, retryable=True
        ) from exc
    if not 200 <= response.status < 300:
        raise StepError(
            "LlmError",
            f"model endpoint answered {response.status}",
            details={"provider": "openai", "status": response.status},
            retryable=response.status in (429, 500, 502, 503, 504),
        )
    try:
        answer = json.loads(response.body)
    except ValueError as exc:
        raise StepError(
            "LlmError", "the model endpoint's answer is not JSON", details={"provider": "openai"}, retryable=True
        ) from exc
    usage = answer.get("usage") or {}
    return Reply(
        text=answer["choices"][0]["message"]["content"],
        input_tokens=usage.get("prompt_tokens", 0),
        output_tokens=usage.get("completion_tokens", 0),
    )


def call_llm(step: dict[str, Any], context: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(result, usage) of the step's model call."""
    model = str(render(step["model"], context))
    prompt = str(render(step["prompt"], context))
    system = str(render(step["system"], context)) if "system" in step else None
    inference = {key: step[key] for key in ("maxTokens", "temperature") if key in step}
    provider = "local" if model.startswith(LOCAL_PREFIX) else llm_provider()
    if provider == "local":
        reply = local_model(model, system, prompt)
    elif provider == "openai":
        endpoint = llm_endpoint()
        if not endpoint:
            raise StepError("LlmError", "the openai provider needs LLM_ENDPOINT", details={"provider": "openai"})
        reply = _openai(endpoint, model, system, prompt, inference)
    else:
        reply = _bedrock(model, system, prompt, inference)
    usage = {
        "provider": provider,
        "model": model,
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
    }
    if step.get("outputFormat") == "json":
        try:
            return json.loads(reply.text), usage
        except ValueError as exc:
            raise StepError(
                "LlmOutputNotJson", "the model's reply is not JSON", details={"text": reply.text[:2000]}
            ) from exc
    return reply.text, usage
