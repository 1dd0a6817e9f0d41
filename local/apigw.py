"""API Gateway REST (v1) data plane for the local stack, as an ASGI app.

moto's API Gateway cannot proxy to Lambda, so this serves the deployed REST API itself: it
routes ``/{stageName}/<path>`` through the OpenAPI ``paths`` of the RestApi body the program
declared and enforces each method's own ``security`` as API Gateway does (the document's root
``security`` counts for nothing, so a method without its own is open):

- an ``awsSigv4`` scheme (AWS_IAM): the SigV4 signature (service ``execute-api``) is verified
  against the embedded AWS's principals (``local.appsync_auth.verify_sigv4``), whose policies must
  allow ``execute-api:Invoke`` on the method ARN; ``requestContext.identity`` names the signer;
- a Lambda REQUEST authorizer (``x-amazon-apigateway-authorizer``): the authorizer function runs in
  the local Lambda runtime with API Gateway's REQUEST authorizer event; its policy must allow the
  method ARN, and its ``context`` (with ``principalId``) becomes ``requestContext.authorizer``;
  ``Unauthorized`` is 401 UNAUTHORIZED, a Deny ACCESS_DENIED;
- an API-key scheme on ``x-api-key``: an enabled key in a usage plan of that API stage.

It then builds the real Lambda proxy event and calls the function named in the integration URI
through the embedded Lambda Invoke API, as API Gateway does; a MOCK integration answers its
``default`` response itself. Its own error answers (unknown path, missing key, a failed integration) are the
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

from local.appsync_auth import IncompleteSignature, Principals, Unauthorized, lower, verify_sigv4
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

    def authorization(self, operation: dict) -> tuple[str, dict]:
        """How API Gateway authorizes the method, from its own security: ("sigv4" | "authorizer" |
        "api_key" | "none", the scheme). A method has one authorization type: the first scheme named."""
        for requirement in operation.get("security") or []:
            for scheme_name in requirement:
                scheme = self.security_schemes.get(scheme_name, {})
                authtype = str(scheme.get("x-amazon-apigateway-authtype", "")).lower()
                if authtype == "awssigv4":
                    return "sigv4", scheme
                if "x-amazon-apigateway-authorizer" in scheme:
                    return "authorizer", scheme
        return ("api_key", {}) if self.needs_api_key(operation) else ("none", {})

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
    "INCOMPLETE_SIGNATURE": (
        403,
        "Authorization header requires 'Credential' parameter.",
        "IncompleteSignatureException",
    ),
    "INVALID_SIGNATURE": (403, "The request signature we calculated does not match.", "InvalidSignatureException"),
    "ACCESS_DENIED": (403, "User is not authorized to access this resource", "AccessDeniedException"),
    "UNAUTHORIZED": (401, "Unauthorized", "UnauthorizedException"),
    "AUTHORIZER_FAILURE": (500, "Internal server error", "AuthorizerFailureException"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error", "AuthorizerConfigurationException"),
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
    response_type: str, request_id: str, body: dict[str, Any] | None = None, stage: str = "", message: str | None = None
) -> Response:
    """API Gateway's own answer of `response_type`: the API's gateway response of that type, else its
    DEFAULT_4XX / DEFAULT_5XX, else API Gateway's default `{"message": ...}` body."""
    status, default_message, error_type = GATEWAY_DEFAULTS[response_type]
    message = message or default_message
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

    def __init__(
        self,
        registry: Registry,
        invoke: LambdaInvoker,
        region: str,
        account_id: str,
        principals: Principals | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        """`principals`: the embedded AWS's IAM (signers' secrets and policies) for AWS_IAM methods;
        without it, `credentials` (access key id -> secret) sign and every signer may invoke."""
        self.principals = principals
        self.credentials = credentials or {}
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
        kind, scheme = api.authorization(match.operation)
        method_arn = self._method_arn(api, stage, request.method, resource_path)
        identity: dict[str, Any] = {}
        authorizer: dict[str, Any] | None = None
        if kind == "api_key" and not self.registry.valid_api_key(api_key, api.record.id, stage):
            log.info("%s %s -> 403 (missing or invalid x-api-key)", request.method, full_path)
            return gateway_response("INVALID_API_KEY", request_id, api.record.body, stage)
        if kind == "sigv4":
            checked = await self._sigv4(request, method_arn)
            if isinstance(checked, tuple):
                log.info("%s %s -> %s (AWS_IAM)", request.method, full_path, checked[0])
                return gateway_response(checked[0], request_id, api.record.body, stage, checked[1])
            identity = checked
        if kind == "authorizer":
            decided = await self._authorize(request, scheme, api, stage, resource_path, match, method_arn, request_id)
            if isinstance(decided, str):
                log.info("%s %s -> %s (authorizer)", request.method, full_path, decided)
                return gateway_response(decided, request_id, api.record.body, stage)
            authorizer, api_key = decided
        integration = match.operation.get("x-amazon-apigateway-integration") or {}
        if integration.get("type", "").lower() == "mock":
            return _mock_response(integration, request_id)
        found = FUNCTION_IN_URI.search(integration.get("uri", ""))
        if integration.get("type", "").lower() != "aws_proxy" or not found:
            log.error(
                "%s %s: only Lambda proxy and MOCK integrations are served locally (got %r)",
                request.method,
                match.template,
                integration,
            )
            return gateway_response("API_CONFIGURATION_ERROR", request_id, api.record.body, stage)
        event = await self._event(request, api, stage, resource_path, match, request_id, api_key)
        event["requestContext"]["identity"].update(identity)
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
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

    def _method_arn(self, api: RestApi, stage: str, method: str, path: str) -> str:
        return (
            f"arn:aws:execute-api:{self.region}:{self.account_id}:{api.record.id}/{stage}/{method}/{path.lstrip('/')}"
        )

    async def _sigv4(self, request: Request, method_arn: str) -> dict[str, Any] | tuple[str, str | None]:
        """AWS_IAM: the signer's `requestContext.identity` fields, or (gateway response type, message)."""
        headers = lower(dict(request.headers))
        if not headers.get("authorization"):
            return "MISSING_AUTHENTICATION_TOKEN", None
        body = await request.body()
        # The path as sent (still percent-encoded), as the signer canonicalized it
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1") + (f"?{request.url.query}" if request.url.query else "")

        def secret_of(key_id: str, token: str | None) -> str | None:
            if self.principals is not None:
                return self.principals.secret(key_id, token)
            return self.credentials.get(key_id)

        try:
            signer = verify_sigv4(headers, request.method, path, body, "execute-api", secret_of)
        except IncompleteSignature as exc:
            return "INCOMPLETE_SIGNATURE", exc.message
        except Unauthorized as exc:
            return "INVALID_SIGNATURE", exc.message
        key, token = signer.access_key_id, signer.session_token
        arn = f"arn:aws:iam::{self.account_id}:user/{key}"
        if self.principals is not None:
            arn = self.principals.principal_arn(key, token) or arn
            if not self.principals.permits(key, token, "execute-api:Invoke", method_arn):
                return (
                    "ACCESS_DENIED",
                    f"User: {arn} is not authorized to perform: execute-api:Invoke on resource: {method_arn}",
                )
        caller = arn.rsplit("/", 1)[-1] if ":assumed-role/" in arn else key
        return {"accountId": self.account_id, "accessKey": key, "caller": caller, "user": caller, "userArn": arn}

    async def _authorize(
        self,
        request: Request,
        scheme: dict,
        api: RestApi,
        stage: str,
        path: str,
        match: RouteMatch,
        method_arn: str,
        request_id: str,
    ) -> tuple[dict[str, Any], str | None] | str:
        """A Lambda REQUEST authorizer: (requestContext.authorizer, the usage plan's key) when its
        policy allows this method, else the gateway response type."""
        config = scheme["x-amazon-apigateway-authorizer"]
        found = FUNCTION_IN_URI.search(str(config.get("authorizerUri", "")))
        if str(config.get("type", "")).lower() != "request" or not found:
            log.error("only Lambda REQUEST authorizers are served locally (got %r)", config)
            return "AUTHORIZER_CONFIGURATION_ERROR"
        proxy = await self._event(request, api, stage, path, match, request_id, None)
        event = {
            "type": "REQUEST",
            "methodArn": method_arn,
            **{key: proxy[key] for key in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
            **{key: proxy[key] for key in ("queryStringParameters", "multiValueQueryStringParameters")},
            "pathParameters": proxy["pathParameters"] or {},
            "stageVariables": proxy["stageVariables"] or {},
            "requestContext": proxy["requestContext"],
        }
        started = time.monotonic()
        try:
            payload, error = await run_in_threadpool(self.invoke, found.group("arn"), json.dumps(event))
        except TimeoutError:
            return "AUTHORIZER_FAILURE"
        if error:
            message = _error_message(payload)
            return "UNAUTHORIZED" if message == "Unauthorized" else "AUTHORIZER_FAILURE"
        try:
            answer = json.loads(payload)
            statements = answer["policyDocument"]["Statement"]
            principal = str(answer["principalId"])
        except (ValueError, KeyError, TypeError):
            log.warning("malformed authorizer answer: %s", payload[:500])
            return "AUTHORIZER_CONFIGURATION_ERROR"
        if not _policy_allows(statements, method_arn):
            return "ACCESS_DENIED"
        context = {k: v for k, v in (answer.get("context") or {}).items() if isinstance(v, str | int | float | bool)}
        latency = int((time.monotonic() - started) * 1000)
        return {**context, "principalId": principal, "integrationLatency": latency}, answer.get("usageIdentifierKey")

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


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("errorMessage", ""))
    except (ValueError, AttributeError):
        return ""


def _arn_matches(pattern: str, arn: str) -> bool:
    """IAM-style wildcards (`*`, `?`) in a policy's resource."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def _policy_allows(statements: Any, method_arn: str) -> bool:
    """An authorizer's policy: some statement allows execute-api:Invoke on the method, none denies it."""
    statements = [statements] if isinstance(statements, dict) else list(statements or [])
    allowed = False
    for statement in statements:
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        applies = any(_arn_matches(a, "execute-api:Invoke") for a in actions) and any(
            _arn_matches(r, method_arn) for r in resources
        )
        if applies and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (applies and statement.get("Effect") == "Allow")
    return allowed


def _mock_response(integration: dict, request_id: str) -> Response:
    """A MOCK integration's `default` integration response (its status and JSON template, as is)."""
    response = (integration.get("responses") or {}).get("default") or {}
    templates = response.get("responseTemplates") or {}
    content = templates.get("application/json", "")
    return Response(
        content,
        status_code=int(response.get("statusCode", 200)),
        media_type="application/json",
        headers={"x-amzn-RequestId": request_id},
    )


def _resource_id(template: str) -> str:
    return format(abs(hash(template)) % (36**6), "x")[:6]
