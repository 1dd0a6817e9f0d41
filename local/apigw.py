"""API Gateway REST (v1) data plane for the local stack, as an ASGI app.

moto's API Gateway cannot proxy to Lambda, so this serves the deployed REST API itself: it
routes ``/{stageName}/<path>`` through the OpenAPI ``paths`` of the RestApi body the program
declared, enforces ``x-api-key`` where an operation's own ``security`` names an API-key scheme
(valid = an enabled key in a usage plan of that API stage; as in API Gateway, the document's root
``security`` counts for nothing, so a method without its own is open), builds the real Lambda proxy event and calls
the function named in the integration URI through the embedded Lambda Invoke API, as API
Gateway does. Its own error answers (unknown path, missing key, a failed integration) are the
gateway responses the body declares (``x-amazon-apigateway-gateway-responses``, rendered like API
Gateway renders them), else API Gateway's default bodies and status codes.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from local.registry import Registry, RestApiRecord

log = logging.getLogger("local.apigw")

ANY_METHOD = "x-amazon-apigateway-any-method"
FUNCTION_IN_URI = re.compile(r":lambda:path/2015-03-31/functions/(?P<arn>.+)/invocations$")
INTEGRATION_TIMEOUT_SECONDS = 29.0

# invoke(function_arn, event_json) -> (payload bytes, function error or None)
LambdaInvoker = Callable[[str, str], tuple[bytes, str | None]]


@dataclass
class RouteMatch:
    template: str
    operation: dict
    path_parameters: dict[str, str]


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{") and part.endswith("+}"):
            pattern += f"(?P<{_group(part[1:-2])}>.+)"
        elif part.startswith("{"):
            pattern += f"(?P<{_group(part[1:-1])}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(f"^{pattern}/?$")


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def _params(template: str) -> list[str]:
    return [p.rstrip("+") for p in re.findall(r"\{([^}]+)\}", template)]


class RestApi:
    """One deployed REST API: its path templates, most specific first (literal segments win)."""

    def __init__(self, record: RestApiRecord) -> None:
        self.record = record
        paths = record.body.get("paths") or {}
        self.security_schemes = (record.body.get("components") or {}).get("securitySchemes") or {}

        def specificity(template: str) -> tuple[int, int, int]:
            segments = template.strip("/").split("/")
            literal = sum(1 for s in segments if not s.startswith("{"))
            greedy = sum(1 for s in segments if s.endswith("+}"))
            return (greedy, -literal, -len(segments))

        self.routes = [(t, _template_regex(t), paths[t]) for t in sorted(paths, key=specificity)]

    def match(self, path: str, method: str) -> RouteMatch | bool | None:
        """A match; False if the path exists but not the method; None if no resource has the path."""
        for template, regex, item in self.routes:
            found = regex.match(path)
            if not found:
                continue
            operation = item.get(method.lower()) or item.get(ANY_METHOD)
            if operation is None:
                return False
            names = _params(template)
            values = [found.group(_group(n)) for n in names]
            return RouteMatch(template, operation, dict(zip(names, values, strict=True)))
        return None

    def needs_api_key(self, operation: dict) -> bool:
        """Whether the operation's own security requires the key: API Gateway imports a method's
        `security` alone (it ignores the document's root one), so neither does this."""
        security = operation.get("security") or []
        for requirement in security:
            for scheme_name in requirement:
                scheme = self.security_schemes.get(scheme_name, {})
                if scheme.get("type") == "apiKey" and scheme.get("name", "").lower() == "x-api-key":
                    return True
                if scheme_name == "api_key" and not scheme:
                    return True
        return False


GATEWAY_RESPONSES_KEY = "x-amazon-apigateway-gateway-responses"
# response type -> (default status, default message, x-amzn-ErrorType), as API Gateway answers
GATEWAY_DEFAULTS: dict[str, tuple[int, str, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token", "MissingAuthenticationTokenException"),
    "INVALID_API_KEY": (403, "Forbidden", "ForbiddenException"),
    "INTEGRATION_FAILURE": (502, "Internal server error", "InternalServerErrorException"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out", "InternalServerErrorException"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error", "InternalServerErrorException"),
}
_TEMPLATE_VARIABLE = re.compile(r"\$(?:\{(?P<braced>context\.[\w.]+)\}|(?P<bare>context\.[\w.]+))")


def _render_template(template: str, variables: dict[str, str]) -> str:
    """A gateway response's mapping template: API Gateway substitutes only `$context` variables
    there (no VTL logic), an unknown one becomes empty, as it does."""

    def substitute(found: re.Match[str]) -> str:
        return variables.get(found.group("braced") or found.group("bare"), "")

    return _TEMPLATE_VARIABLE.sub(substitute, template)


def gateway_response(
    response_type: str, request_id: str, body: dict[str, Any] | None = None, stage: str = ""
) -> Response:
    """API Gateway's own answer of `response_type`: the API's gateway response of that type, else its
    DEFAULT_4XX / DEFAULT_5XX, else API Gateway's default `{"message": ...}` body."""
    status, message, error_type = GATEWAY_DEFAULTS[response_type]
    declared = (body or {}).get(GATEWAY_RESPONSES_KEY) or {}
    custom = declared.get(response_type) or declared.get("DEFAULT_4XX" if status < 500 else "DEFAULT_5XX")
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error_type}
    if not custom:
        return Response(
            json.dumps({"message": message}), status_code=status, media_type="application/json", headers=headers
        )
    variables = {
        "context.error.message": message,
        "context.error.messageString": json.dumps(message),
        "context.error.responseType": response_type,
        "context.requestId": request_id,
        "context.stage": stage,
    }
    templates = custom.get("responseTemplates") or {}
    template = templates.get("application/json", next(iter(templates.values()), None))
    content = _render_template(template, variables) if template is not None else json.dumps({"message": message})
    for name, value in (custom.get("responseParameters") or {}).items():
        if name.startswith("gatewayresponse.header.") and value.startswith("'") and value.endswith("'"):
            headers[name.removeprefix("gatewayresponse.header.")] = value[1:-1]
    return Response(
        content, status_code=int(custom.get("statusCode", status)), media_type="application/json", headers=headers
    )


def _multi(items: list[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not items:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in items:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


class RestApiGateway:
    """ASGI app serving every declared stage at ``/{stageName}/...``."""

    def __init__(self, registry: Registry, invoke: LambdaInvoker, region: str, account_id: str) -> None:
        self.registry = registry
        self.invoke = invoke
        self.region = region
        self.account_id = account_id
        self._apis: dict[str, RestApi] = {}

    def _api(self, api_id: str) -> RestApi | None:
        record = self.registry.rest_apis.get(api_id)
        if record is None:
            return None
        api = self._apis.get(api_id)
        if api is None or api.record is not record:
            api = self._apis[api_id] = RestApi(record)
        return api

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        full_path = request.url.path
        stage, _, rest = full_path.lstrip("/").partition("/")
        resource_path = "/" + rest
        api_id = self.registry.stages.get(stage)
        api = self._api(api_id) if api_id else None
        if api is None:
            return gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id)
        match = api.match(resource_path, request.method)
        if not isinstance(match, RouteMatch):
            return gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id, api.record.body, stage)
        api_key = request.headers.get("x-api-key")
        if api.needs_api_key(match.operation) and not self.registry.valid_api_key(api_key, api.record.id, stage):
            log.info("%s %s -> 403 (missing or invalid x-api-key)", request.method, full_path)
            return gateway_response("INVALID_API_KEY", request_id, api.record.body, stage)
        integration = match.operation.get("x-amazon-apigateway-integration") or {}
        found = FUNCTION_IN_URI.search(integration.get("uri", ""))
        if integration.get("type", "").lower() != "aws_proxy" or not found:
            log.error(
                "%s %s: only Lambda proxy integrations are served locally (got %r)",
                request.method,
                match.template,
                integration,
            )
            return gateway_response("API_CONFIGURATION_ERROR", request_id, api.record.body, stage)
        event = await self._event(request, api, stage, resource_path, match, request_id, api_key)
        started = time.monotonic()
        try:
            payload, function_error = await run_in_threadpool(self.invoke, found.group("arn"), json.dumps(event))
        except TimeoutError:
            return gateway_response("INTEGRATION_TIMEOUT", request_id, api.record.body, stage)
        response = self._proxy_response(payload, function_error, request_id, api.record.body, stage)
        log.info(
            "%s %s -> %d (%.0f ms)",
            request.method,
            full_path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    async def _event(
        self,
        request: Request,
        api: RestApi,
        stage: str,
        path: str,
        match: RouteMatch,
        request_id: str,
        api_key: str | None,
    ) -> dict:
        headers, multi_headers = _multi(list(request.headers.items()))
        query, multi_query = _multi(list(request.query_params.multi_items()))
        raw = await request.body()
        body: str | None = None
        is_base64 = False
        if raw:
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                body, is_base64 = base64.b64encode(raw).decode(), True
        now = time.time()
        client = request.client
        source_ip = client.host if client else "127.0.0.1"
        key_id = next((kid for kid, key in self.registry.api_keys.items() if key.value == api_key), None)
        return {
            "resource": match.template,
            "path": path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": match.path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": _resource_id(match.template),
                "resourcePath": match.template,
                "httpMethod": request.method,
                "extendedRequestId": request_id[:8] + "=",
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": f"/{stage}{path}",
                "accountId": self.account_id,
                "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
                "stage": stage,
                "domainPrefix": request.url.hostname or "127",
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": request.headers.get("user-agent"),
                    "user": None,
                    "apiKey": api_key,
                    "apiKeyId": key_id,
                },
                "domainName": request.url.netloc,
                "apiId": api.record.id,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _proxy_response(
        self, payload: bytes, function_error: str | None, request_id: str, api_body: dict[str, Any], stage: str
    ) -> Response:
        if function_error:
            log.warning("Lambda function failed (%s): %s", function_error, payload[:1000].decode("utf-8", "replace"))
            return gateway_response("INTEGRATION_FAILURE", request_id, api_body, stage)
        try:
            result = json.loads(payload)
            if not isinstance(result, dict):
                raise ValueError("not an object")
            status = int(result.get("statusCode", 200))
            headers = result.get("headers") or {}
            multi = result.get("multiValueHeaders") or {}
            body = result.get("body")
            if not isinstance(headers, dict) or not isinstance(multi, dict):
                raise ValueError("headers must be objects")
            if body is not None and not isinstance(body, str):
                raise ValueError("body must be a string")
            content = b""
            if body:
                content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
        except (ValueError, TypeError) as exc:
            log.warning("malformed Lambda proxy response (%s): %s", exc, payload[:1000])
            return gateway_response("INTEGRATION_FAILURE", request_id, api_body, stage)
        response = Response(content, status_code=status)
        raw_headers: list[tuple[bytes, bytes]] = []
        for key, values in multi.items():
            for value in values if isinstance(values, list) else [values]:
                raw_headers.append((key.lower().encode(), str(value).encode()))
        for key, value in headers.items():
            if key.lower() not in multi and key not in multi:
                raw_headers.append((key.lower().encode(), str(value).encode()))
        if not any(k == b"content-type" for k, _ in raw_headers):
            raw_headers.append((b"content-type", b"application/json"))
        raw_headers += [(b"content-length", str(len(content)).encode()), (b"x-amzn-requestid", request_id.encode())]
        response.raw_headers = raw_headers
        return response


def _resource_id(template: str) -> str:
    return format(abs(hash(template)) % (36**6), "x")[:6]
