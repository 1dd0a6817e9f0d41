"""The AppSync routes of the local stack: `/graphql` (HTTP) and `/graphql/realtime` (WebSocket).

The program's GraphQL API (recorded by the mocks, whose `uris` point here) is built once the
program has run; both routes serve it, and `close` releases its JS engines.
"""

from __future__ import annotations

import logging
import os

from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route, WebSocketRoute, request_response

from local import iam_enforcement
from local.appsync import GraphqlApi, GraphqlEndpoint, LambdaInvoker
from local.appsync_realtime import RealtimeHub
from local.iam_enforcement import LocalIam
from local.lambda_runtime import FAKE_CREDENTIALS
from local.registry import Registry

log = logging.getLogger("local.appsync")


def local_credentials() -> dict[str, str]:
    """Access key id -> secret key of every credential the local stack hands out (never real ones)."""
    known = {FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]: FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret and key in known:
        known[key] = secret
    return known


class LocalAppSync:
    """The served GraphQL API (the program declares one) and its real-time hub."""

    def __init__(self, registry: Registry, invoke: LambdaInvoker, iam: LocalIam | None = None) -> None:
        """`iam`: the embedded AWS's principals the stack runs on (IAM callers are checked against
        them, Lambda data sources invoke as their role); without it, the fixed local credentials."""
        if len(registry.graphql_apis) > 1:
            log.warning("%d GraphQL APIs declared; the local stack serves the first", len(registry.graphql_apis))
        api_id = next(iter(registry.graphql_apis))
        if iam is not None:  # Lambda data sources invoke their function as their service role
            roles = {
                source.function_arn: source.service_role_arn
                for (source_api, _name), source in registry.data_sources.items()
                if source_api == api_id and source.function_arn and source.service_role_arn
            }
            invoke = iam.lambda_invoker(roles, iam_enforcement.APPSYNC_SERVICE, invoke)
        # IAM callers are the embedded AWS's principals (their keys, their policies), when one runs
        self.api = GraphqlApi(api_id, registry, invoke, local_credentials(), iam)
        self.hub = RealtimeHub(self.api)

    def routes(self) -> list[BaseRoute]:
        # AppSync answers browsers from any origin (CORS: `*`, no per-API setting), so a page served
        # elsewhere (the web console opened for a stage, `python -m local.console`) can call it.
        graphql = CORSMiddleware(
            request_response(GraphqlEndpoint(self.api).endpoint),
            allow_origins=["*"],
            allow_methods=["POST"],
            allow_headers=["*"],
        )
        return [
            Route("/graphql", graphql, methods=["POST", "OPTIONS"]),
            WebSocketRoute("/graphql/realtime", self.hub),  # an ASGI app (see RealtimeHub.__call__)
        ]

    def close(self) -> None:
        self.api.close()
