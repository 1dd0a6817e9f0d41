"""IAM authorization of the embedded AWS's requests (moto 5.2.5), the way AWS authorizes them.

moto can check every request against the caller's policies (`moto.core.authorization`,
`moto.iam.access_control`), but only process-wide (`settings.INITIAL_NO_AUTH_ACTION_COUNT`), which
would also turn it on for every `mock_aws` test sharing the process, and with gaps that deny
least-privilege policies outright:

- only S3, SQS, IAM and STS name the resource of a request; every other service asks for `"*"`,
  which a statement naming a table or a function never matches (so a correct policy is denied);
- the action is moto's operation name: `lambda:Invoke` where IAM says `lambda:InvokeFunction`;
- a request touching several resources (`TransactWriteItems`, `BatchGetItem`) is one check on
  `dynamodb:TransactWriteItems`, an action IAM does not have: AWS checks each item's own action
  (`dynamodb:PutItem`, ...) on its own table;
- a presigned URL (query-string signature) has no `Authorization` header, which moto's check reads
  unconditionally (a 500).

Here the check runs only for requests served by an embedded server whose port was switched on
(`enforce`), and it asks for what AWS asks for: the IAM action names and resource ARNs of
`required_permissions` (DynamoDB and its streams, Lambda, Step Functions; S3, SQS, IAM and STS as
moto names them), each checked with moto's own policy evaluation. `engine_clients_with_role` makes
the Step Functions engine call Lambda with the credentials of the state machine's role (moto's
engine signs every call with a fixed fake key and builds a new boto3 client for each).
"""

from __future__ import annotations

import functools
import hmac
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from botocore.credentials import Credentials

_lock = threading.Lock()
_enforced_ports: set[str] = set()
# moto's IAM backend keeps users, roles and policies in plain dicts that its requests iterate
# (`IamResponse._determine_resource` lists every role): concurrent CreateRole calls of one
# provisioning raced ("dictionary changed size during iteration", a 500). IAM requests, and the
# reads of IAM that authorizing a request makes, take this lock.
IAM_LOCK = threading.RLock()
# (role ARN) -> the role's temporary credentials, for the callers the local stack plays (the engine)
RoleCredentials = Callable[[str], Credentials | None]
_engine_credentials: RoleCredentials | None = None

# IAM's name where it differs from the API operation's (the Service Authorization Reference)
IAM_ACTION_NAMES = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
}
# DynamoDB requests that IAM authorizes item by item, with the action of each item
_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def enforce(port: int, on: bool = True) -> None:
    """Authorize (or stop authorizing) every request the embedded server on `port` serves."""
    authorize_embedded_requests()
    with _lock:
        if on:
            _enforced_ports.add(str(port))
        else:
            _enforced_ports.discard(str(port))


def enforced(port: int) -> bool:
    return str(port) in _enforced_ports


def required_permissions(response: Any, service: str, action: str, resource: str) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS checks for one request of `service` (its signing
    name) and `action` (moto's operation name); `resource` is what moto determined (or "*")."""
    if service == "dynamodb":
        body = _json_body(response)
        if str(response.headers.get("X-Amz-Target", "")).startswith("DynamoDBStreams"):
            return [(action, _stream_arn(body))]
        return _dynamodb(response, action, body)
    if service == "lambda":
        return [(IAM_ACTION_NAMES.get((service, action), action), _function_arn(response))]
    if service == "states":
        body = _json_body(response)
        return [(action, str(body.get("stateMachineArn") or body.get("executionArn") or "*"))]
    return [(IAM_ACTION_NAMES.get((service, action), action), resource)]


def _json_body(response: Any) -> dict[str, Any]:
    if isinstance(response.body, dict):  # DynamoDB's handler has parsed it already
        return response.body
    try:
        body = json.loads(response.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _table_arn(response: Any, table: str, index: str | None = None) -> str:
    if table.startswith("arn:"):
        arn = table
    else:
        arn = f"arn:aws:dynamodb:{response.region}:{response.current_account}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(response: Any, action: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    if action in ("TransactWriteItems", "TransactGetItems"):
        pairs = []
        for item in body.get("TransactItems") or []:
            for kind, spec in (item or {}).items():
                if kind in _TRANSACT_ITEM_ACTIONS and isinstance(spec, dict):
                    pairs.append((_TRANSACT_ITEM_ACTIONS[kind], _table_arn(response, str(spec.get("TableName")))))
        return pairs or [(action, "*")]
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, _table_arn(response, str(table))) for table in body.get("RequestItems") or {}] or [
            (action, "*")
        ]
    if body.get("TableName"):
        return [(action, _table_arn(response, str(body["TableName"]), body.get("IndexName")))]
    return [(action, "*")]


def _stream_arn(body: dict[str, Any]) -> str:
    if body.get("StreamArn"):
        return str(body["StreamArn"])
    iterator = str(body.get("ShardIterator") or "")
    return iterator.split("|", 1)[0] if iterator.startswith("arn:") else "*"  # moto's: "<stream arn>|1|<id>"


def _function_arn(response: Any) -> str:
    path = urlparse(response.uri).path
    parts = path.split("/")
    if "functions" not in parts or parts.index("functions") + 1 >= len(parts):
        return "*"
    name = unquote(parts[parts.index("functions") + 1])
    qualifier = (parse_qs(urlparse(response.uri).query).get("Qualifier") or [None])[0]
    if not name.startswith("arn:"):
        name = f"arn:aws:lambda:{response.region}:{response.current_account}:function:{name}"
    return f"{name}:{qualifier}" if qualifier and name.count(":") == 6 else name


# -- the check ----------------------------------------------------------------------------------------


def _served_by_enforced_server(response: Any) -> bool:
    request = getattr(response, "normalized_request", None)
    if request is None or not getattr(request, "from_wsgi_server", False):
        return False
    return str(request.environ.get("SERVER_PORT")) in _enforced_ports


def _presigned_headers(response: Any) -> dict[str, str] | None:
    """A query-string (presigned) signature as the header moto's check reads, or None."""
    query = {name.lower(): values for name, values in parse_qs(urlparse(response.uri).query).items()}
    credential = (query.get("x-amz-credential") or [None])[0]
    legacy_key = (query.get("awsaccesskeyid") or [None])[0]  # a SigV2 query signature (boto3's default)
    if not credential and legacy_key:
        credential = f"{legacy_key}/19700101/{response.region}/s3/aws4_request"
    if not credential:
        return None
    headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=0"}
    token = (query.get("x-amz-security-token") or [None])[0]
    if token:
        headers["X-Amz-Security-Token"] = token
    return headers


def _authorize(response: Any, iam_request_cls: type, resource: str) -> None:
    """Authenticate the caller and check every permission the request needs; raises the error AWS
    answers with, in the service's protocol (JSON services get `AccessDeniedException` as JSON)."""
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError

    target = response.headers.get("X-Amz-Target")
    if target in ActionAuthenticatorMixin.PUBLIC_OPERATIONS or target in unsigned_operations():
        return
    action = str(response._get_action())
    json_protocol = _json_protocol(response)
    headers: Any = response.headers
    presigned = None
    if "Authorization" not in headers:
        presigned = _presigned_headers(response)
        if presigned is None:
            raise _in_protocol(AccessDeniedError(user_arn="anonymous", action=action), json_protocol)
        headers = presigned
    parsed = urlparse(response.uri)
    path = response.raw_path + (f"?{parsed.query}" if parsed.query else "")
    try:
        with IAM_LOCK:
            iam_request = iam_request_cls(
                account_id=response.current_account,
                method=response.method,
                path=path,
                data=response.data,
                body=response.raw_body,
                headers=headers,
                action=action,
            )
        form = "x-www-form-urlencoded" in str(response.headers.get("Content-Type", ""))
        if presigned is None and (iam_request._service == "s3" or form):  # moto's check gets these right
            iam_request.check_signature()
        elif presigned is None:  # a presigned URL's signature is not recomputed (see docs/local.md)
            _check_signature(response, headers, iam_request._access_key.create_credentials())
    except Exception as exc:
        raise _in_protocol(exc, json_protocol) from None
    service = iam_request._service
    for iam_action, arn in required_permissions(response, service, action, resource):
        iam_request._action = f"{service}:{iam_action}"
        try:
            with IAM_LOCK:
                iam_request.check_action_permitted(arn)
        except (AccessDeniedError, TypeError):  # moto's trust check reads only AWS principals (a TypeError)
            if service == "s3":
                raise
            message = (
                f"User: {iam_request._access_key.arn} is not authorized to perform: {service}:{iam_action} "
                f"on resource: {arn} because no identity-based policy allows the {service}:{iam_action} action"
            )
            raise _in_protocol(_denied(message), json_protocol) from None


@functools.cache
def unsigned_operations() -> frozenset[str]:
    """The targets AWS serves without a signature (botocore's model says `smithy.api#noAuth`): a
    user pool's sign-in (InitiateAuth, RespondToAuthChallenge), refresh and sign-out. moto's own list
    has InitiateAuth but not RespondToAuthChallenge, so an SRP sign-in was refused halfway."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("cognito-idp")
    prefix = model.metadata["targetPrefix"]
    return frozenset(
        f"{prefix}.{name}"
        for name in model.operation_names
        if "smithy.api#noAuth" in (model.operation_model(name).auth or [])
        or model.operation_model(name).auth_type == "none"
    )


def _check_signature(response: Any, headers: Any, credentials: Credentials) -> None:
    """SigV4 recomputed over the request as received (moto's own check signs a GET's parsed query
    parameters as its body, so every signed GET, e.g. Lambda's GetFunction, failed to match)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from moto.core.exceptions import SignatureDoesNotMatchError

    authorization = str(headers["Authorization"])
    fields = dict(part.strip().split("=", 1) for part in authorization.split(" ", 1)[1].split(",") if "=" in part)
    scope = fields.get("Credential", "").split("/")
    signed = fields.get("SignedHeaders", "").split(";")
    if len(scope) < 4 or not signed:
        raise SignatureDoesNotMatchError()
    body = response.raw_body if isinstance(response.raw_body, bytes) else str(response.raw_body or "").encode()
    request = AWSRequest(
        method=response.method,
        url=response.uri,
        headers={name: headers[name] for name in signed if name in headers},
        data=body or b"",
    )
    request.context["timestamp"] = headers.get("X-Amz-Date", "")
    signer = SigV4Auth(credentials, scope[3], scope[2])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, fields.get("Signature", "")):
        raise SignatureDoesNotMatchError()


# What JSON-protocol services call moto's (XML, query-protocol) authentication errors.
_JSON_ERROR_NAMES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}
_JSON_SERVICES = ("dynamodb", "dynamodbstreams", "lambda", "stepfunctions", "events", "logs")


def _json_protocol(response: Any) -> bool:
    content_type = str(response.headers.get("Content-Type", ""))
    return "json" in content_type or getattr(response, "boto3_service_name", "") in _JSON_SERVICES


def _denied(message: str) -> Exception:
    from moto.core.exceptions import _RESTError

    error = _RESTError("AccessDenied", message)
    error.code = 403
    return error


def _in_protocol(exc: Exception, json_protocol: bool) -> Exception:
    """moto's authentication errors are XML; a JSON-protocol client reads only a JSON error's type."""
    from moto.core.exceptions import JsonRESTError, _RESTError

    if not json_protocol or not isinstance(exc, _RESTError) or isinstance(exc, JsonRESTError):
        return exc
    error = JsonRESTError(_JSON_ERROR_NAMES.get(exc.error_type, exc.error_type), exc.message)
    error.code = exc.code
    return error


def authorize_embedded_requests() -> None:
    """Route moto's per-request authorization through `_authorize` for enforced servers. Idempotent."""
    from moto.core.authorization import ActionAuthenticatorMixin

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action
    if getattr(original, "_aiwf_iam", False):
        return

    def _authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if getattr(self, "_aiwf_authorized", False):
            return  # authorized before the DynamoDB lock (below)
        if _served_by_enforced_server(self):
            _authorize(self, iam_request_cls, resource)
            return
        original(self, iam_request_cls, resource)  # moto's own (process-wide, off by default)

    _authenticate_and_authorize_action._aiwf_iam = True  # type: ignore[attr-defined]
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action  # type: ignore[method-assign]
    _authorize_dynamodb_outside_its_lock()
    _iam_requests_one_at_a_time()


def _iam_requests_one_at_a_time() -> None:
    """IAM requests under `IAM_LOCK` (they are few: provisioning and tests). Idempotent."""
    from moto.iam.responses import IamResponse

    original = IamResponse.call_action
    if getattr(original, "_aiwf_iam_locked", False):
        return

    def call_action(self: Any) -> Any:
        with IAM_LOCK:
            return original(self)

    call_action._aiwf_iam_locked = True  # type: ignore[attr-defined]
    IamResponse.call_action = call_action  # type: ignore[method-assign]


def _authorize_dynamodb_outside_its_lock() -> None:
    """Every DynamoDB request runs under one lock (`local.moto_glue.dynamodb`); its authorization
    (a signature and the caller's policies, ~0.3 ms) needs none of it, so it runs before the lock
    instead of holding every other table request up. Idempotent."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.iam.access_control import IAMRequest
    from werkzeug.exceptions import HTTPException

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        locked = handler.call_action
        if getattr(locked, "_aiwf_authorized_first", False):
            continue

        def call_action(self: Any, _locked: Any = locked) -> Any:
            if _served_by_enforced_server(self):
                try:
                    _authorize(self, IAMRequest, "*")
                except HTTPException as error:  # answered as moto's call_action answers it
                    answer = error.description, {"status": error.code}
                    status, headers, body = self._transform_response(self.response_headers, answer)
                    headers, body = self._enrich_response(headers, body)
                    return status, headers, body
                self._aiwf_authorized = True
            return _locked(self)

        call_action._aiwf_authorized_first = True  # type: ignore[attr-defined]
        handler.call_action = call_action  # type: ignore[method-assign]


# -- the Step Functions engine's clients --------------------------------------------------------------


def engine_clients_with_role(credentials: RoleCredentials | None) -> None:
    """The engine calls Lambda (and its other integrations) as the state machine's role, with
    `credentials(role_arn)`, through one cached client per role and service (moto builds a client
    with a fixed fake key for every call). None puts moto's fixed key back. Idempotent."""
    global _engine_credentials
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils as lambda_eval_utils
    import moto.stepfunctions.parser.asl.utils.boto_client as boto_client

    _engine_credentials = credentials
    original = boto_client.boto_client_for
    if getattr(lambda_eval_utils.boto_client_for, "_aiwf_role", False):
        return
    clients: dict[tuple[str, str, str], Any] = {}
    clients_lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        from moto.core.models import botocore_stubber

        provider = _engine_credentials
        role_arn = getattr(state_credentials, "role_arn", None)
        creds = provider(role_arn) if provider is not None and role_arn else None
        if creds is None or botocore_stubber.enabled:
            return original(region, service, state_credentials)
        key = (region, service, creds.access_key)
        client = clients.get(key)
        if client is None:
            with clients_lock:
                client = clients.get(key)
                if client is None:
                    client = clients[key] = _engine_client(region, service, creds)
        return client

    boto_client_for._aiwf_role = True  # type: ignore[attr-defined]
    lambda_eval_utils.boto_client_for = boto_client_for  # type: ignore[assignment]


def _engine_client(region: str, service: str, creds: Credentials) -> Any:
    """A client like the engine's own (no retries, its timeouts), signed with the role's credentials."""
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    session = boto3.session.Session(
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        region_name=region,
    )
    return session.client(
        service,
        endpoint_url=f"http://localhost:{moto_server_port()}",
        config=Config(
            parameter_validation=False,
            retries={"max_attempts": 0, "total_max_attempts": 1},
            connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            max_pool_connections=64,
        ),
    )


def policies_permit(policies: list[Any], action: str, resource: str) -> bool:
    """moto's evaluation of identity policies: an explicit Deny wins, else any Allow (for checks the
    local stack makes itself, e.g. `appsync:GraphQL` on a field)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    permitted = False
    for policy in policies:
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted
