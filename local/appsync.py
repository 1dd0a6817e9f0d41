"""AppSync GraphQL data plane for the local stack: the deployed schema, resolvers and auth, over HTTP.

moto's AppSync has no data plane, so this executes the GraphQL API the program declared (recorded
by ``local.mocks``) with graphql-core:
- the schema is the deployed SDL, with AppSync's scalars (AWSJSON parsed on input, JSON text on
  output, as AppSync does) and auth directives defined first;
- a direct Lambda resolver gets AppSync's event (`arguments`, `identity`, `source`, `request`,
  `info` with `selectionSetList` ...) through the embedded Lambda Invoke API;
- a NONE data source runs the resolver's own APPSYNC_JS code (``local.js_resolver``);
- auth as AppSync checks it: an API key or a SigV4 signature for the request, then every field
  against the modes its directives allow (field, else type, else the default mode), refusing with
  AppSync's `Unauthorized` error shape;
- a successful mutation named in an `@aws_subscribe` is handed to the API's publish listeners:
  the real-time hub (``local.appsync_realtime``) registers itself for its subscribers.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    execute,
    parse,
    print_ast,
    validate,
    visit,
)
from graphql.language import ObjectTypeDefinitionNode, ObjectTypeExtensionNode
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local import graphql_document
from local.appsync_auth import API_KEY, AWS_IAM, Authorizer, Identity, Principals, Unauthorized, lower
from local.graphql_document import query_depth, response_name, selection_paths
from local.js_resolver import JsResolver, ResolverError
from local.registry import ACCOUNT_ID, Registry, ResolverRecord

log = logging.getLogger("local.appsync")

# invoke(function_arn, event_json) -> (payload bytes, function error or None)
LambdaInvoker = Callable[[str, str], tuple[bytes, str | None]]
Publish = Callable[[str, dict[str, Any], str], None]  # (mutation field, its result, its response name)

AUTH_DIRECTIVES = {
    "aws_api_key": API_KEY,
    "aws_iam": AWS_IAM,
    "aws_oidc": "OPENID_CONNECT",
    "aws_cognito_user_pools": "AMAZON_COGNITO_USER_POOLS",
    "aws_lambda": "AWS_LAMBDA",
}
AWS_SCALARS = (
    "AWSJSON",
    "AWSDateTime",
    "AWSDate",
    "AWSTime",
    "AWSTimestamp",
    "AWSEmail",
    "AWSURL",
    "AWSPhone",
    "AWSIPAddress",
)
_DIRECTIVE_DEFINITIONS = {
    "aws_api_key": "directive @aws_api_key on OBJECT | FIELD_DEFINITION",
    "aws_iam": "directive @aws_iam on OBJECT | FIELD_DEFINITION",
    "aws_oidc": "directive @aws_oidc on OBJECT | FIELD_DEFINITION",
    "aws_lambda": "directive @aws_lambda on OBJECT | FIELD_DEFINITION",
    "aws_cognito_user_pools": (
        "directive @aws_cognito_user_pools(cognito_groups: [String]) on OBJECT | FIELD_DEFINITION"
    ),
    "aws_auth": "directive @aws_auth(cognito_groups: [String]) on FIELD_DEFINITION",
    "aws_subscribe": "directive @aws_subscribe(mutations: [String]) on FIELD_DEFINITION",
}
DOCUMENT_CACHE_SIZE = 256
# Request limits, answered with HTTP 400 and an AppSync-shaped error instead of a crash:
MAX_QUERY_DEPTH = 75  # AppSync's `queryDepthLimit` at its maximum; an API's own value (1-75) wins
MAX_REQUEST_BYTES = 1024 * 1024  # one HTTP request: the operation text and its variables
MAX_JSON_DEPTH = 64  # nesting of the request's JSON (variables) and of any AWSJSON value
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:\d{2}(:\d{2})?)?)$")


class AppSyncError(Exception):
    """A field error in AppSync's shape: `errorType`, `errorInfo`, `data` next to `message`."""

    def __init__(self, message: str, error_type: str | None, data: Any = None, info: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.data = data
        self.info = info


# -- schema --------------------------------------------------------------------------------------


def _prelude(sdl: str) -> str:
    """AppSync's built-in scalars and directives, for the ones the SDL does not define itself."""
    lines = [f"scalar {name}" for name in AWS_SCALARS if not re.search(rf"\bscalar\s+{name}\b", sdl)]
    lines += [text for name, text in _DIRECTIVE_DEFINITIONS.items() if f"directive @{name}" not in sdl]
    return "\n".join(lines) + "\n" + sdl


def _json_out(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether brackets/braces outside strings nest deeper than `limit` in JSON or GraphQL text,
    found without recursion (the parsers recurse per level and a 10k-deep document crashes them)."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


def _json_in(value: Any) -> Any:
    if not isinstance(value, str):
        raise GraphQLError("AWSJSON values are JSON text")
    if nesting_exceeds(value, MAX_JSON_DEPTH):
        raise GraphQLError(f"Unable to parse the AWSJSON value: it nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(value)
    except ValueError as exc:
        raise GraphQLError(f"Unable to parse {value!r} as valid JSON.") from exc


def _datetime(value: Any) -> str:
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise GraphQLError(f"Can't serialize value: {value!r} is not an AWSDateTime")
    return value


def build_appsync_schema(sdl: str) -> GraphQLSchema:
    schema = build_schema(_prelude(sdl))
    scalars: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "AWSJSON": (_json_out, _json_in),
        "AWSDateTime": (_datetime, _datetime),
    }
    for name in AWS_SCALARS:
        scalar = schema.type_map.get(name)
        if scalar is None:
            continue
        serialize, parse_value = scalars.get(name, (str, lambda v: v))

        def literal(node: Any, _variables: Any = None, _parse: Callable[[Any], Any] = parse_value) -> Any:
            return _parse(getattr(node, "value", None))

        # graphql-core 3.3 reads the coerce_* hooks (the older names are kept for 3.2).
        for attribute, hook in (
            ("serialize", serialize),
            ("coerce_output_value", serialize),
            ("parse_value", parse_value),
            ("coerce_input_value", parse_value),
            ("parse_literal", literal),
            ("coerce_input_literal", literal),
        ):
            setattr(scalar, attribute, hook)
    return schema


def _directive_names(node: Any) -> list[str]:
    return [d.name.value for d in (getattr(node, "directives", None) or ())]


def auth_table(schema: GraphQLSchema, default_mode: str) -> dict[tuple[str, str], frozenset[str]]:
    """(type, field) -> allowed modes: the field's auth directives, else its type's, else the default."""
    table: dict[tuple[str, str], frozenset[str]] = {}
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        nodes = [type_.ast_node, *(type_.extension_ast_nodes or ())]
        type_modes = {
            AUTH_DIRECTIVES[name]
            for node in nodes
            if isinstance(node, ObjectTypeDefinitionNode | ObjectTypeExtensionNode)
            for name in _directive_names(node)
            if name in AUTH_DIRECTIVES
        }
        for name, field_ in type_.fields.items():
            modes = {AUTH_DIRECTIVES[d] for d in _directive_names(field_.ast_node) if d in AUTH_DIRECTIVES}
            table[(type_.name, name)] = frozenset(modes or type_modes or {default_mode})
    return table


def subscribed_mutations(schema: GraphQLSchema) -> dict[str, list[str]]:
    """Mutation field -> the subscription fields whose `@aws_subscribe` names it."""
    found: dict[str, list[str]] = {}
    subscription = schema.subscription_type
    for name, field_ in (subscription.fields if subscription else {}).items():
        for directive in (field_.ast_node.directives if field_.ast_node else None) or ():
            if directive.name.value != "aws_subscribe":
                continue
            for argument in directive.arguments:
                if argument.name.value == "mutations":
                    for value in getattr(argument.value, "values", ()):
                        found.setdefault(value.value, []).append(name)
    return found


# -- selection sets ------------------------------------------------------------------------------


def selection_set_list(info: GraphQLResolveInfo) -> list[str]:
    """AppSync's `info.selectionSetList`: every selected field path under the resolved field."""
    return selection_paths(info.field_nodes, info.fragments)


def _selection_graphql(info: GraphQLResolveInfo) -> str:
    node = info.field_nodes[0]
    return print_ast(node.selection_set) if node.selection_set else ""


# -- the API ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The execution context: who called, with which headers and (raw) variables."""

    identity: Identity
    headers: dict[str, str] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)


class GraphqlApi:
    """One deployed GraphQL API: schema, auth table, resolvers; executes operations for a caller."""

    def __init__(
        self,
        api_id: str,
        registry: Registry,
        invoke: LambdaInvoker,
        credentials: dict[str, str],
        principals: Principals | None = None,
    ) -> None:
        record = registry.graphql_apis[api_id]
        self.api_id = api_id
        self.registry = registry
        self.invoke = invoke
        self.schema = build_appsync_schema(record.schema)
        self.default_mode = record.authentication_type
        configured = record.query_depth_limit or 0
        # AppSync's 0 means "no limit"; here the parser's recursion needs one, so 0 is the maximum.
        self.max_query_depth = configured if 1 <= configured <= MAX_QUERY_DEPTH else MAX_QUERY_DEPTH
        modes = (self.default_mode, *record.additional)
        keys = _ApiKeys(registry, api_id)
        self.authorizer = Authorizer(
            tuple(modes), keys, credentials, ACCOUNT_ID, principals, user_pool=lambda: _user_pool(registry, api_id)
        )
        self.allowed = auth_table(self.schema, self.default_mode)
        roots = (self.schema.query_type, self.schema.mutation_type, self.schema.subscription_type)
        self.root_types = frozenset(root.name for root in roots if root is not None)
        self.subscriptions = subscribed_mutations(self.schema)
        self._js: dict[tuple[str, str], JsResolver] = {}
        self._blocking: set[tuple[str, str]] = set()  # fields whose resolver waits on a Lambda
        self._documents: dict[str, _Checked] = {}
        self._selections: dict[int, tuple[FieldNode, dict[str, Any]]] = {}
        self._publish_listeners: list[Publish] = []  # the real-time hub registers itself
        for (resolver_api, type_name, field_name), resolver in registry.resolvers.items():
            if resolver_api != api_id:
                continue
            type_ = self.schema.get_type(type_name)
            if not isinstance(type_, GraphQLObjectType) or field_name not in type_.fields:
                raise ValueError(f"resolver for {type_name}.{field_name}, which the schema does not have")
            type_.fields[field_name].resolve = self._resolver(type_name, field_name, resolver)

    def on_publish(self, listener: Publish) -> None:
        """Call `listener(mutation field, result, response name)` after each successful mutation of a
        field that an `@aws_subscribe` names (the real-time hub of this API registers itself here)."""
        self._publish_listeners.append(listener)

    def close(self) -> None:
        for js in self._js.values():
            js.close()

    def field_code(self, type_name: str, field_name: str) -> JsResolver | None:
        """The APPSYNC_JS code deployed on a field, if any: the real-time hub runs a subscription
        field's code when a client subscribes (it sets the subscription's filter)."""
        return self._js.get((type_name, field_name))

    # -- resolvers --------------------------------------------------------------------------------

    def _resolver(self, type_name: str, field_name: str, resolver: ResolverRecord) -> Callable[..., Any]:
        source = self.registry.data_sources.get((self.api_id, resolver.data_source))
        if source is None:
            raise ValueError(f"{type_name}.{field_name}: unknown data source {resolver.data_source!r}")
        code = resolver.code
        js = JsResolver(code) if code else None
        if js is not None:
            self._js[(type_name, field_name)] = js
        if source.type == "AWS_LAMBDA" and js is None:
            self._blocking.add((type_name, field_name))
            return self._direct_lambda(source.function_arn)
        if source.type == "AWS_LAMBDA" and js is not None:
            self._blocking.add((type_name, field_name))
            return self._lambda_js(source.function_arn, js)
        if source.type == "NONE" and js is not None:
            return self._none_js(js)
        raise ValueError(f"{type_name}.{field_name}: {source.type} with code={bool(code)} is not emulated locally")

    def _context(self, root: Any, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        caller: Caller = info.context
        return {
            "arguments": arguments,
            "args": arguments,
            "identity": caller.identity.detail,
            "source": root,
            "request": {"headers": caller.headers, "domainName": None},
            "info": {
                "fieldName": info.field_name,
                "parentTypeName": info.parent_type.name,
                "variables": caller.variables,
                **self._selection(info),
            },
            "prev": None,
            "stash": {},
        }

    def _selection(self, info: GraphQLResolveInfo) -> dict[str, Any]:
        """`selectionSetList` / `selectionSetGraphQL`, computed once per field node of a cached document."""
        key = id(info.field_nodes[0])
        found = self._selections.get(key)
        if found is None or found[0] is not info.field_nodes[0]:
            value = {"selectionSetList": selection_set_list(info), "selectionSetGraphQL": _selection_graphql(info)}
            found = self._selections[key] = (info.field_nodes[0], value)
            if len(self._selections) > 4 * DOCUMENT_CACHE_SIZE:
                self._selections.pop(next(iter(self._selections)))
        return found[1]

    def _direct_lambda(self, function_arn: str) -> Callable[..., Any]:
        def resolve(root: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
            event = self._context(root, info, arguments)
            payload, error = self.invoke(function_arn, json.dumps(event, default=str))
            try:
                answer = json.loads(payload) if payload else None
            except ValueError:
                answer = None
            if error:
                message = answer.get("errorMessage", "") if isinstance(answer, dict) else payload.decode()[:500]
                raise AppSyncError(message, "Lambda:Unhandled")
            return answer

        return resolve

    def _lambda_js(self, function_arn: str, js: JsResolver) -> Callable[..., Any]:
        """APPSYNC_JS code on a Lambda data source: `request` returns `{operation: 'Invoke', payload}`,
        the function gets the payload, and `response` sees its answer as `ctx.result`, or a function
        error as `ctx.error` ({message, type: 'Lambda:Unhandled'})."""

        def resolve(root: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
            ctx = self._context(root, info, arguments)
            try:
                request, early = js.call("request", ctx)
                if early:
                    return request
                if not isinstance(request, dict) or request.get("operation") not in ("Invoke", "BatchInvoke"):
                    raise ResolverError("a Lambda resolver's request must be {operation: 'Invoke', ...}", "Code")
                payload, error = self.invoke(function_arn, json.dumps(request.get("payload"), default=str))
                try:
                    answer = json.loads(payload) if payload else None
                except ValueError:
                    answer = None
                if error:
                    message = answer.get("errorMessage", "") if isinstance(answer, dict) else payload.decode()[:500]
                    ctx["error"] = {"message": message, "type": "Lambda:Unhandled"}
                    ctx["result"] = None
                else:
                    ctx["result"] = answer
                value, _ = js.call("response", ctx)
                return value
            except ResolverError as exc:
                raise AppSyncError(exc.message, exc.error_type, exc.data, exc.info) from exc

        return resolve

    def _none_js(self, js: JsResolver) -> Callable[..., Any]:
        def resolve(root: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
            try:
                return js.resolve_none(self._context(root, info, arguments))
            except ResolverError as exc:
                raise AppSyncError(exc.message, exc.error_type, exc.data, exc.info) from exc

        return resolve

    # -- auth -------------------------------------------------------------------------------------

    def field_allowed(self, type_name: str, field_name: str, mode: str) -> bool:
        if field_name.startswith("__"):
            return True
        return mode in self.allowed.get((type_name, field_name), frozenset({self.default_mode}))

    def _auth_middleware(self, next_: Callable[..., Any], root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        caller: Caller = info.context
        if not self.field_allowed(info.parent_type.name, info.field_name, caller.identity.mode) or (
            caller.identity.mode == AWS_IAM
            and info.parent_type.name in self.root_types
            and not self.iam_allows(caller.identity, info.parent_type.name, info.field_name)
        ):
            raise AppSyncError(
                f"Not Authorized to access {info.field_name} on type {info.parent_type.name}", "Unauthorized"
            )
        return next_(root, info, **args)

    def iam_allows(self, identity: Identity, type_name: str, field_name: str) -> bool:
        """An IAM caller's policies must allow `appsync:GraphQL` on a top-level field, as in AppSync."""
        arn = f"arn:aws:appsync:{identity.region}:{ACCOUNT_ID}:apis/{self.api_id}/types/{type_name}/fields/{field_name}"
        return self.authorizer.permits(identity, "appsync:GraphQL", arn)

    # -- execution --------------------------------------------------------------------------------

    def checked(self, query: str) -> _Checked:
        """The parsed document, its syntax/validation errors, and whether it selects a field whose
        resolver blocks; cached, since clients send the same operations over and over (validation
        is most of the cost of a small mutation)."""
        found = self._documents.get(query)
        if found is None:
            found = self._check(query)
            if len(self._documents) >= DOCUMENT_CACHE_SIZE:
                self._documents.pop(next(iter(self._documents)))
            self._documents[query] = found
        return found

    def _check(self, query: str) -> _Checked:
        empty = DocumentNode(definitions=())
        limit = self.max_query_depth
        too_deep = _Checked(empty, [limit_error(f"Query depth exceeds the limit of {limit}")], False, True)
        # The parser recurses per nesting level: text nested far past the limit is refused unparsed.
        if nesting_exceeds(query, 2 * MAX_QUERY_DEPTH):
            return too_deep
        try:
            document = parse(query)
            errors = [format_error(e, "ValidationError") for e in validate(self.schema, document)]
            if not errors and query_depth(document) > limit:
                return too_deep
        except GraphQLError as exc:
            return _Checked(empty, [format_error(exc, "InvalidSyntaxError")], False)
        except RecursionError:  # e.g. a chain of thousands of fragments
            return too_deep
        return _Checked(document, errors, not errors and self._selects_blocking(document))

    def _selects_blocking(self, document: DocumentNode) -> bool:
        """Whether any field of any operation in the document is resolved by a Lambda."""
        if not self._blocking:
            return False
        type_info = TypeInfo(self.schema)
        blocking = self._blocking
        found: list[bool] = []

        class _Fields(Visitor):
            def enter_field(self, node: FieldNode, *_args: Any) -> None:
                parent = type_info.get_parent_type()
                if parent is not None and (parent.name, node.name.value) in blocking:
                    found.append(True)

        visit(document, TypeInfoVisitor(type_info, _Fields()))
        return bool(found)

    def blocks(self, query: str) -> bool:
        """Whether executing `query` waits on a Lambda (the HTTP endpoint then runs it off its loop)."""
        return self.checked(query).blocking

    def run(
        self, query: str, variables: dict[str, Any] | None, operation_name: str | None, caller: Caller
    ) -> dict[str, Any]:
        """Execute one HTTP operation for an authorized caller; the GraphQL response body."""
        checked = self.checked(query)
        document, problems = checked.document, checked.errors
        if problems:
            return {"data": None, "errors": problems}
        operation = graphql_document.operation(document, operation_name)
        if operation is not None and operation.operation.value == "subscription":
            message = "Subscriptions are served on the real-time endpoint"
            return {"data": None, "errors": [{"message": message, "errorType": "BadRequest"}]}
        result = execute(
            self.schema,
            document,
            variable_values=variables,
            operation_name=operation_name,
            context_value=replace(caller, variables=variables or {}),
            # graphql-core takes plain functions as middleware (a bound method would be skipped).
            middleware=[lambda next_, root, info, **args: self._auth_middleware(next_, root, info, **args)],
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [format_error(e) for e in result.errors]
        if (
            operation is not None
            and operation.operation.value == "mutation"
            and result.data
            and self._publish_listeners
        ):
            self._announce(operation, result.data, {tuple(e.path or ())[:1] for e in result.errors or ()})
        return body

    def _announce(self, operation: OperationDefinitionNode, data: dict[str, Any], failed: set[tuple]) -> None:
        """Hand each successful subscribed mutation field's result to the publish listeners (the hub)."""
        for selection in operation.selection_set.selections:
            if not isinstance(selection, FieldNode):
                continue
            name = selection.name.value
            key = response_name(selection)
            value = data.get(key)
            if name in self.subscriptions and value is not None and (key,) not in failed:
                for listener in self._publish_listeners:
                    listener(name, value, key)


class _Checked(NamedTuple):
    document: DocumentNode
    errors: list[dict[str, Any]]
    blocking: bool
    over_limit: bool = False  # refused by a request limit: the endpoint answers HTTP 400


def limit_error(message: str) -> dict[str, Any]:
    """A request refused by a limit, in AppSync's error shape."""
    return {"errorType": "BadRequestException", "message": message}


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [limit_error(message)]},
        status_code=400,
        headers={"x-amzn-ErrorType": "BadRequestException", "x-amzn-RequestId": _request_id()},
    )


def _user_pool(registry: Registry, api_id: str) -> tuple[str, str | None, str] | None:
    """The API's Cognito mode as the authorizer checks it: pool id, app client regex, JWKS URL."""
    auth = registry.graphql_apis[api_id].user_pool
    pool = registry.user_pools.get(auth.pool_id) if auth is not None else None
    if auth is None or pool is None:
        return None
    return auth.pool_id, auth.app_id_client_regex, pool.jwks_url


class _ApiKeys(dict):  # type: ignore[type-arg]
    """A live view of the API's keys in the registry: value -> expiry."""

    def __init__(self, registry: Registry, api_id: str) -> None:
        super().__init__()
        self._registry, self._api_id = registry, api_id

    def _current(self) -> dict[str, str | None]:
        return {k: v.expires for k, v in self._registry.appsync_keys.items() if v.api_id == self._api_id}

    def __contains__(self, key: object) -> bool:
        return key in self._current()

    def __getitem__(self, key: str) -> str | None:
        return self._current()[key]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._current().get(key, default)


def format_error(error: GraphQLError, default_type: str | None = None) -> dict[str, Any]:
    """graphql-core's error as AppSync writes it: `path`, `data`, `errorType`, `errorInfo`, `locations`, `message`."""
    original = error.original_error
    locations = [{"line": loc.line, "column": loc.column, "sourceName": None} for loc in error.locations or ()]
    if isinstance(original, AppSyncError):
        return {
            "path": list(error.path) if error.path else None,
            "data": original.data,
            "errorType": original.error_type,
            "errorInfo": original.info,
            "locations": locations,
            "message": original.message,
        }
    formatted: dict[str, Any] = {"path": list(error.path) if error.path else None, "locations": locations}
    if default_type or original is not None:
        formatted["errorType"] = default_type or type(original).__name__
    formatted["message"] = error.message
    return formatted


def unauthorized_response(exc: Unauthorized) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"errorType": "UnauthorizedException", "message": exc.message}]},
        status_code=401,
        headers={"x-amzn-ErrorType": "UnauthorizedException"},
    )


class GraphqlEndpoint:
    """`POST /graphql`: authorize, then execute: on a worker thread when a resolver waits on a Lambda,
    else on the loop itself (a NONE resolver's JS takes microseconds; the thread hop took ~1 ms of a
    published state change's trip to its subscribers)."""

    def __init__(self, api: GraphqlApi) -> None:
        self.api = api

    async def endpoint(self, request: Request) -> Response:
        started = time.monotonic()
        body = await request.body()
        headers = lower(request.headers)
        try:
            identity = self.api.authorizer.identify(headers, request.method, request.url.path, body)
        except Unauthorized as exc:
            return unauthorized_response(exc)
        if len(body) > MAX_REQUEST_BYTES:
            return _bad_request(f"The request is {len(body)} bytes; the limit is {MAX_REQUEST_BYTES} bytes")
        if nesting_exceeds(body.decode("utf-8", "replace"), MAX_JSON_DEPTH):
            return _bad_request(f"The request's JSON (its variables) nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            document = json.loads(body or b"{}")
            query = document["query"]
            if not isinstance(query, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"errors": [{"errorType": "MalformedHttpRequestException", "message": "Unable to parse the request"}]},
                status_code=400,
            )
        checked = self.api.checked(query)
        if checked.over_limit:
            return JSONResponse({"data": None, "errors": checked.errors}, status_code=400)
        caller = Caller(identity, headers)
        arguments = (query, document.get("variables") or {}, document.get("operationName"), caller)
        if self.api.blocks(query):
            answer = await run_in_threadpool(self.api.run, *arguments)
        else:
            answer = self.api.run(*arguments)
        log.debug("graphql %s in %.1f ms", identity.mode, (time.monotonic() - started) * 1000)
        return JSONResponse(answer, headers={"x-amzn-RequestId": _request_id()})


def _request_id() -> str:
    return str(uuid.uuid4())
