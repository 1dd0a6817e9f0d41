"""The typed per-stage configuration: stages differ by these values, never by code.

Values come from `Pulumi.<stage>.yaml`; anything out of range stops the program before a single
resource is planned, with a message that names the key and the allowed values.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from .runtime_settings import environment

PROJECT = "ai-workflows"
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
)


# A deny entry: a host name or `*.suffix`, an IP address, or a CIDR network; names and addresses
# may carry a port (`host:8443`, `[::1]:4000`).
_DENY_NAME = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$")


def _valid_deny_entry(entry: str) -> bool:
    text = entry.lower()
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
            return True
        if text.startswith("["):
            address, _, rest = text[1:].partition("]")
            ipaddress.IPv6Address(address)
            return rest == "" or (re.fullmatch(r":\d{1,5}", rest) is not None and 0 < int(rest[1:]) < 65536)
        if text.count(":") > 1:
            ipaddress.IPv6Address(text)
            return True
    except ValueError:
        return False
    port = text.rpartition(":")[2] if ":" in text else None
    return _DENY_NAME.match(text) is not None and (port is None or 0 < int(port) < 65536)


class EgressConfig(BaseModel):
    """What a flow's outbound calls (http, poll checks, notify, OpenAI-compatible llm) may reach.

    Link-local and metadata addresses, the AWS endpoint and the stack's own APIs are refused
    whatever this says; loopback and private ranges only when allowed here.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    # Strict: YAML true/false only, as for the flat keys (`yes` or "1" is a mistake, not a bool).
    allow_loopback: StrictBool = False
    allow_private_networks: StrictBool = False
    deny_hosts: tuple[str, ...] = ()

    @field_validator("deny_hosts")
    @classmethod
    def _entries_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [entry for entry in value if not _valid_deny_entry(entry.strip()) or "," in entry]
        if bad:
            raise ValueError(
                f"not a host name, *.suffix, IP address or CIDR network (with an optional :port): {', '.join(bad)}"
            )
        return tuple(entry.strip().lower() for entry in value)

    def environment(self) -> dict[str, pulumi.Input[str]]:
        """The variables the runtime reads (lambdas/aiwf/settings.py `egress_settings`)."""
        return environment(
            egress_allow_loopback=self.allow_loopback,
            egress_allow_private_networks=self.allow_private_networks,
            egress_deny_hosts=self.deny_hosts,
        )


class LimitsConfig(BaseModel):
    """Bounds on what one step of an untrusted flow may spend (each breach fails the step with the
    normalized error named here, never a hung worker)."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    # A template render past this fails with TemplateTimeout.
    template_ms: int = Field(default=1000, ge=10, le=60_000)
    # An HTTP response body past this fails the step with ResponseTooLarge (Lambda answers at most 6 MB).
    response_bytes: int = Field(default=1_048_576, ge=1024, le=6_291_456)

    def environment(self) -> dict[str, pulumi.Input[str]]:
        """The variables the runtime reads (lambdas/aiwf/runtime_limits.py)."""
        return environment(limits_template_ms=self.template_ms, limits_response_bytes=self.response_bytes)


class StageConfig(BaseModel):
    """One stage's settings. Each field is the key `ai-workflows:<fieldInCamelCase>` of
    `Pulumi.<stage>.yaml` (`stage` excepted: it is the stack's name), declared nowhere else."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    stage: str = Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_retention_days: int = 14
    retain_on_delete: bool = False
    point_in_time_recovery: bool = False
    tracing: bool = False
    # The llm step's model provider: Bedrock Converse, the deterministic local model, or an
    # OpenAI-compatible endpoint (llmEndpoint, e.g. a model server on the developer's machine).
    llm_provider: Literal["bedrock", "local", "openai"] = "bedrock"
    llm_endpoint: str | None = Field(default=None, pattern=r"^https?://\S+$", validate_default=True)
    lambda_timeout_seconds: int = Field(default=30, ge=5, le=900)
    lambda_memory_mb: int = Field(default=512, ge=128, le=10240)
    throttle_rate_limit: float = Field(default=20, gt=0, le=10000)
    throttle_burst_limit: int = Field(default=40, ge=1, le=5000)
    payload_threshold_bytes: int = Field(default=131072, ge=1024, le=350_000)
    # AppSync accepts 1 to 365 days; the key expires at 00:00 UTC this many days after the deploy
    # day (so two deploys on one day change nothing), hence at least 2 to stay above AppSync's 1.
    api_key_expiry_days: int = Field(default=30, ge=2, le=365)
    # Alarms exist in every stage; whether they notify the alarm topic is per stage.
    alarm_actions: bool = False
    egress: EgressConfig = EgressConfig()
    limits: LimitsConfig = LimitsConfig()
    # The second engine (infra/durable_engine.py): deploy the durable orchestrator function, the
    # engine flows run on when they name none, and how long a durable execution's state is kept.
    durable_engine: bool = True
    default_engine: Literal["stepfunctions", "durable"] = "stepfunctions"
    durable_retention_days: int = Field(default=14, ge=1, le=90)

    @field_validator("log_retention_days")
    @classmethod
    def _retention_is_allowed(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @field_validator("llm_endpoint")
    @classmethod
    def _endpoint_for_openai(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("llm_provider") == "openai" and not value:
            raise ValueError("is required when llmProvider is openai")
        return value

    @field_validator("default_engine")
    @classmethod
    def _default_engine_deployed(cls, value: str, info: ValidationInfo) -> str:
        if value == "durable" and info.data.get("durable_engine") is False:
            raise ValueError("is durable, but durableEngine is false (the durable function is not deployed)")
        return value

    def name(self, suffix: str) -> str:
        """Stage-prefixed physical name, so stages never collide in one account."""
        return f"aiwf-{self.stage}-{suffix}"


class ConfigError(Exception):
    pass


def stage_keys() -> dict[str, tuple[str, type]]:
    """`Pulumi.<stage>.yaml` key -> (StageConfig field, what its text parses as), from the fields."""
    return {
        info.alias or field: (field, _kind(info.annotation))
        for field, info in StageConfig.model_fields.items()
        if field != "stage"
    }


def _kind(annotation: object) -> type:
    """How Pulumi's string for a field is read: booleans and numbers strictly, a model as JSON."""
    if annotation is bool or annotation is StrictBool:
        return bool
    if annotation in (int, float):
        return annotation  # type: ignore[return-value]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict
    return str


def parse_stage_config(stage: str, raw: dict[str, str | None]) -> StageConfig:
    """Build the config from raw strings as Pulumi stores them; ConfigError lists every bad key."""
    keys = stage_keys()
    values: dict[str, object] = {"stage": stage}
    problems: list[str] = []
    for key, (field, kind) in keys.items():
        text = raw.get(key)
        if text is None:
            continue
        try:
            values[field] = _convert(text, kind)
        except ValueError as exc:
            problems.append(f"{PROJECT}:{key}: {exc}")
    try:
        parsed = StageConfig(**values)  # range checks run even when another key did not parse
    except ValidationError as exc:
        reverse = {field: key for key, (field, _) in keys.items()}
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else "?"
            # A nested key (egress.allowLoopback) is named as written in the YAML.
            inner = "".join(f".{part}" for part in error["loc"][1:] if isinstance(part, str))
            problems.append(f"{PROJECT}:{reverse.get(field, field)}{inner}: {error['msg']}")
    else:
        if not problems:
            return parsed
    raise ConfigError(f"invalid configuration for stage {stage!r}:\n  " + "\n  ".join(problems))


def _convert(text: str, kind: type) -> object:
    if kind is bool:
        lowered = str(text).strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueError(f"expected true or false, got {text!r}")
    if kind is dict:
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(f"expected an object, got {text!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {text!r}")
        return value
    if kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {text!r}") from None
    return str(text)


def load_stage_config() -> StageConfig:
    """Read the current stack's config; the stack name is the stage."""
    config = pulumi.Config(PROJECT)
    return parse_stage_config(pulumi.get_stack(), {key: config.get(key) for key in stage_keys()})
