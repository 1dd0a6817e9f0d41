"""What the program declared that the local servers need: typed records, filled by the provisioners.

moto has no data plane for API Gateway (it cannot proxy to Lambda) nor for AppSync, so the local
stack serves both itself (`local.apigw`, `local.appsync`) from what the program declared. The
provisioners (`local.provision`) write these records while the program runs; the servers only
read them afterwards. Lambda functions are recorded too, for diagnostics and tests (moto holds
the function itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from local.pulumi_mocks import ACCOUNT_ID as ACCOUNT_ID  # the account the mocks answer for (in the servers' ARNs)


@dataclass
class FunctionRecord:
    """A Lambda function as created in moto (what `make dev` and tests may want to look at)."""

    arn: str
    handler: str
    environment: dict[str, str]
    timeout: int
    memory_size: int
    runtime: str
    layers: list[str]
    code_size: int


@dataclass
class RestApiRecord:
    """An API Gateway RestApi: its id, name and OpenAPI body (what `local.apigw` routes)."""

    id: str
    name: str
    body: dict


@dataclass
class ApiKeyRecord:
    """An API Gateway API key."""

    value: str
    enabled: bool
    name: str


@dataclass
class GraphqlApiRecord:
    """An AppSync GraphQL API: schema, default and additional auth modes, URIs (served by `local.appsync`)."""

    name: str
    schema: str
    authentication_type: str
    additional: list[str]
    uris: dict[str, str]
    query_depth_limit: int | None = None
    user_pool: UserPoolAuth | None = None  # its AMAZON_COGNITO_USER_POOLS mode, when it has one


@dataclass(frozen=True)
class UserPoolRecord:
    """A Cognito user pool of the embedded AWS: where its public keys are served."""

    jwks_url: str


@dataclass(frozen=True)
class UserPoolAuth:
    """A GraphQL API's AMAZON_COGNITO_USER_POOLS mode: the pool, and the app clients it accepts."""

    pool_id: str
    app_id_client_regex: str | None = None


@dataclass
class AppSyncKeyRecord:
    """An AppSync API key: the API it belongs to and its expiry (ISO time or epoch seconds; None = none)."""

    api_id: str
    expires: Any = None


@dataclass
class DataSourceRecord:
    """An AppSync data source: `AWS_LAMBDA` (with its function) or `NONE`."""

    type: str
    function_arn: str | None = None
    service_role_arn: str | None = None  # the role AppSync assumes to invoke the function


@dataclass
class ResolverRecord:
    """An AppSync unit resolver: its data source and, for APPSYNC_JS, its code."""

    data_source: str
    code: str | None = None


@dataclass
class Registry:
    """What the program declared that the local servers need (filled by the provisioners, read by the servers)."""

    functions: dict[str, FunctionRecord] = field(default_factory=dict)  # function name -> record
    rest_apis: dict[str, RestApiRecord] = field(default_factory=dict)  # id -> record
    stages: dict[str, str] = field(default_factory=dict)  # stage name -> rest api id
    api_keys: dict[str, ApiKeyRecord] = field(default_factory=dict)  # key id -> record
    usage_plans: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # id -> [(apiId, stage)]
    usage_plan_keys: list[tuple[str, str]] = field(default_factory=list)  # (planId, keyId)
    resources: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, id)
    graphql_apis: dict[str, GraphqlApiRecord] = field(default_factory=dict)  # api id -> record
    appsync_keys: dict[str, AppSyncKeyRecord] = field(default_factory=dict)  # key value -> record
    data_sources: dict[tuple[str, str], DataSourceRecord] = field(default_factory=dict)  # (apiId, name)
    resolvers: dict[tuple[str, str, str], ResolverRecord] = field(default_factory=dict)  # (apiId, type, field)
    user_pools: dict[str, UserPoolRecord] = field(default_factory=dict)  # pool id -> record

    def valid_api_key(self, value: str | None, api_id: str, stage: str) -> bool:
        """True when `value` is an enabled key attached, through a usage plan, to this API stage."""
        if not value:
            return False
        key_ids = {kid for kid, key in self.api_keys.items() if key.value == value and key.enabled}
        for plan_id, key_id in self.usage_plan_keys:
            if key_id in key_ids and (api_id, stage) in self.usage_plans.get(plan_id, []):
                return True
        return False
