"""Least privilege on the local stack: who calls the embedded AWS, with which credentials.

In AWS every call is made by a principal and allowed only by its policies. The local stack keeps
that, so a policy that lacks an action or names the wrong resource fails on the laptop with
AccessDenied instead of after `pulumi up`:

- **the functions**: each worker gets the temporary credentials of its function's role (the
  `role` the program gave the function), obtained as Lambda obtains them: the role's trust policy
  must name `lambda.amazonaws.com`, and the embedded AWS's STS issues them (AssumeRole);
- **the AWS services the local stack plays**: the Step Functions engine invokes Lambda with the
  state machine's role (`states.amazonaws.com`); Lambda's SQS poller and a stream mapping's
  on-failure destination use the function's role, as in AWS;
- **the local stack's own machinery and its user** (provisioning, the API Gateway and AppSync
  emulation invoking functions, the CLI, tests, `aws --endpoint-url`): the local admin, an IAM user
  of the embedded AWS whose access key is the documented local credentials (`testing` /
  `testing`) and whose policy allows everything, so nothing has to switch authorization off.

The embedded AWS then authorizes every request it serves against the caller's policies
(`local.moto_glue.iam`), from its start: provisioning runs as the admin, so it is never denied.
`LOCAL_IAM=off` turns the check off (every valid local signature is then allowed, as before).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from botocore.credentials import Credentials

from local.moto_glue import iam as moto_iam
from local.pulumi_mocks import ACCOUNT_ID

log = logging.getLogger("local.iam")

LOCAL_ACCESS_KEY_ID = "testing"
LOCAL_SECRET_ACCESS_KEY = "testing"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY}
ADMIN_USER = "aiwf-local-admin"
ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Sid": "LocalAdmin", "Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
SESSION_SECONDS = 12 * 3600  # the longest AssumeRole grants; a local session never refreshes
LAMBDA_SERVICE = "lambda.amazonaws.com"
STATES_SERVICE = "states.amazonaws.com"
APPSYNC_SERVICE = "appsync.amazonaws.com"
INVOKE_TIMEOUT_SECONDS = 30  # AppSync's resolver limit


def enforcement_requested() -> bool:
    """`LOCAL_IAM=off` (or 0/false/no) runs the embedded AWS without authorization."""
    return os.environ.get("LOCAL_IAM", "on").strip().lower() not in ("off", "0", "false", "no")


class RoleNotAssumable(Exception):
    """The service cannot assume the role: it does not exist or its trust policy does not name the service."""


def trusts(trust_policy: str | dict[str, Any], service: str) -> bool:
    """Whether a role's trust policy lets `service` (a service principal) call sts:AssumeRole.
    moto's own trust check reads only AWS principals, so service principals are read here."""
    document = json.loads(trust_policy) if isinstance(trust_policy, str) else trust_policy
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principals = (
            (statement.get("Principal") or {}).get("Service") if isinstance(statement.get("Principal"), dict) else None
        )
        principals = [principals] if isinstance(principals, str) else principals or []
        if service not in principals:
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


class LocalIam:
    """The principals of one embedded AWS: its admin, and the roles the services it stands in for assume."""

    def __init__(self, port: int, region: str, enforce: bool = True, account_id: str = ACCOUNT_ID) -> None:
        self.port = port
        self.region = region
        self.account_id = account_id
        self.enforcing = enforce
        self._roles: dict[tuple[str, str, str], Credentials] = {}
        self._lock = threading.Lock()

    # -- set-up ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Create the admin, route the engine's calls through role credentials, start authorizing."""
        self.create_admin()
        moto_iam.engine_clients_with_role(self.state_machine_credentials)
        moto_iam.enforce(self.port, self.enforcing)
        if self.enforcing:
            log.info("IAM policies enforced on the embedded AWS (local credentials: the %s user)", ADMIN_USER)
        else:
            log.warning("IAM policies NOT enforced on the embedded AWS (LOCAL_IAM=off): every signed call is allowed")

    def stop(self) -> None:
        moto_iam.enforce(self.port, False)
        moto_iam.engine_clients_with_role(None)
        with self._lock:
            self._roles.clear()

    def create_admin(self) -> None:
        """The admin user whose access key is the documented local credentials (`testing`). Created in
        the backend: IAM's API cannot choose an access key's id. Idempotent."""
        with moto_iam.IAM_LOCK:
            self._create_admin()

    def _create_admin(self) -> None:
        from moto.iam.models import AccessKey

        backend = self._iam_backend()
        user = backend.users.get(ADMIN_USER) or backend.create_user(self.region, ADMIN_USER)
        backend.put_user_policy(ADMIN_USER, "local-admin", ADMIN_POLICY)
        if not any(key.access_key_id == LOCAL_ACCESS_KEY_ID for key in user.access_keys):
            key = AccessKey(ADMIN_USER, prefix="AKIA", account_id=self.account_id)
            key.access_key_id = LOCAL_ACCESS_KEY_ID
            key.secret_access_key = LOCAL_SECRET_ACCESS_KEY
            user.access_keys.append(key)
            backend.access_keys[key.physical_resource_id] = key

    def _iam_backend(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account_id]["aws"]

    # -- roles ----------------------------------------------------------------------------------

    def role_credentials(self, role_arn: str, service: str, session_name: str) -> Credentials:
        """Temporary credentials of `role_arn` for `service`, as the service gets them: the role must
        exist and trust the service; the embedded AWS's STS issues them (AssumeRole). Cached."""
        key = (role_arn, service, session_name)
        found = self._roles.get(key)
        if found is not None:
            return found
        from moto.iam.exceptions import NotFoundException
        from moto.sts.models import sts_backends

        try:
            with moto_iam.IAM_LOCK:
                role = self._iam_backend().get_role_by_arn(role_arn)
        except NotFoundException:
            raise RoleNotAssumable(f"{service} cannot assume {role_arn}: no such role") from None
        if not trusts(role.assume_role_policy_document, service):
            raise RoleNotAssumable(f"{service} cannot assume {role_arn}: its trust policy does not name {service}")
        with self._lock:
            found = self._roles.get(key)
            if found is None:
                assumed = sts_backends[self.account_id]["aws"].assume_role(
                    region_name=self.region,
                    role_session_name=session_name[:64],
                    role_arn=role_arn,
                    policy="",
                    duration=SESSION_SECONDS,
                    external_id="",
                )
                found = self._roles[key] = Credentials(
                    assumed.access_key_id, assumed.secret_access_key, assumed.session_token
                )
        return found

    def function_environment(self, role_arn: str, function_name: str) -> dict[str, str]:
        """The credential variables of a function's execution environment (Lambda sets these three)."""
        creds = self.role_credentials(role_arn, LAMBDA_SERVICE, function_name)
        return {
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            "AWS_SESSION_TOKEN": creds.token or "",
        }

    def state_machine_credentials(self, role_arn: str) -> Credentials | None:
        """What the Step Functions engine signs with; None (moto's fixed fake key: denied) when the
        role cannot be assumed by Step Functions."""
        try:
            return self.role_credentials(role_arn, STATES_SERVICE, "states")
        except RoleNotAssumable as exc:
            log.warning("%s", exc)
            return None

    def function_role_credentials(self, function_arn: str) -> Credentials | None:
        """The execution role's credentials of a function (what Lambda's pollers use), or None."""
        from moto.awslambda.utils import get_backend

        try:
            fn = get_backend(self.account_id, self.region).get_function(function_arn)
            return self.role_credentials(fn.role, LAMBDA_SERVICE, fn.function_name)
        except Exception as exc:  # no such function or role: the caller falls back and is denied
            log.warning("no role credentials for %s: %s", function_arn, exc)
            return None

    def lambda_invoker(
        self, roles: dict[str, str], service: str, fallback: Callable[[str, str], tuple[bytes, str | None]]
    ) -> Callable[[str, str], tuple[bytes, str | None]]:
        """How a service that invokes functions with a role of its own (an AppSync data source's
        `serviceRoleArn`) calls the Lambda Invoke API: as that role, so its policy must allow
        lambda:InvokeFunction on the function. `roles` maps function ARN -> role ARN; functions
        without one go through `fallback`."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ReadTimeoutError

        clients: dict[str, Any] = {}

        def invoke(function_arn: str, event: str) -> tuple[bytes, str | None]:
            role_arn = roles.get(function_arn)
            if role_arn is None:
                return fallback(function_arn, event)
            client = clients.get(role_arn)
            if client is None:
                creds = self.role_credentials(role_arn, service, service.split(".")[0])
                client = clients[role_arn] = boto3.session.Session(
                    aws_access_key_id=creds.access_key,
                    aws_secret_access_key=creds.secret_key,
                    aws_session_token=creds.token,
                    region_name=self.region,
                ).client(
                    "lambda",
                    endpoint_url=f"http://127.0.0.1:{self.port}",
                    config=Config(
                        read_timeout=INVOKE_TIMEOUT_SECONDS, retries={"max_attempts": 0}, max_pool_connections=32
                    ),
                )
            try:
                answer = client.invoke(FunctionName=function_arn, Payload=event.encode())
            except ReadTimeoutError as exc:  # as the stack's own invoker reports it
                raise TimeoutError(str(exc)) from exc
            return answer["Payload"].read(), answer.get("FunctionError")

        return invoke

    # -- callers of the local stack's own emulations (AppSync) --------------------------------------

    def secret(self, access_key_id: str, session_token: str | None) -> str | None:
        """The secret key of a credential the embedded AWS issued (a user's key, or a role session's
        with its token), for verifying a SigV4 signature; None when unknown."""
        access = self._access_key(access_key_id, session_token)
        return access.create_credentials().secret_key if access is not None else None

    def principal_arn(self, access_key_id: str, session_token: str | None) -> str | None:
        access = self._access_key(access_key_id, session_token)
        return access.arn if access is not None else None

    def permits(self, access_key_id: str, session_token: str | None, action: str, resource: str) -> bool:
        """Whether the caller's policies allow `action` on `resource` (always, when not enforcing)."""
        if not self.enforcing:
            return True
        access = self._access_key(access_key_id, session_token)
        if access is None:
            return False
        with moto_iam.IAM_LOCK:
            policies = access.collect_policies()
        return moto_iam.policies_permit(policies, action, resource)

    def _access_key(self, access_key_id: str, session_token: str | None) -> Any:
        from moto.iam.access_control import CreateAccessKeyFailure, create_access_key

        headers = {"X-Amz-Security-Token": session_token} if session_token else {}
        try:
            with moto_iam.IAM_LOCK:
                return create_access_key(self.account_id, "aws", access_key_id, headers)
        except CreateAccessKeyFailure:
            return None


class _Active:
    iam: LocalIam | None = None


def activate(iam: LocalIam | None) -> None:
    """Set (or clear) the embedded AWS's principals, for the stand-ins that act as a service."""
    _Active.iam = iam


def active() -> LocalIam | None:
    """The running embedded AWS's principals, or None when none runs."""
    return _Active.iam
