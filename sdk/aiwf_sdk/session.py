"""A signed-in end user: sign in to the stage's user pool, keep the session in a private file, refresh it.

An end user acts with an ID token of the stage's Cognito user pool and sees only its tenant's tasks
(claim `custom:tenant`); the API key acts for tenant `default` and AWS credentials for an operator.
So a person who signs in (`aiwf login`) gets exactly a user's authority, and a script that never
signs in keeps the key or its AWS credentials.

    pool = UserPool.from_outputs(outputs)            # userPoolId, userPoolClientId (+ awsEndpointUrl locally)
    session = sign_in(pool, "ada", password)         # USER_SRP_AUTH: the password never leaves the machine
    session.save(session_path(outputs_file=...))     # mode 0600
    client = Client.from_stack_outputs(outputs, auth=SessionAuth(session))   # Authorization: <ID token>

The session file keeps the ID and refresh tokens (never the password or the access token). The ID
token lasts an hour; `SessionAuth` refreshes it (REFRESH_TOKEN_AUTH) before it expires and writes
the new one back. `sign_in(..., admin=True)` uses ADMIN_USER_PASSWORD_AUTH, which is signed with AWS
credentials (operators' scripts that act as a test user); locally those are the `awsCredentials` output.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aiwf_sdk.errors import AiwfError, StackOutputsError

SESSION_FILE = "session.json"
LOCAL_SESSION = Path(".local") / SESSION_FILE
REFRESH_MARGIN_SECONDS = 60
"""An ID token this close to its `exp` is refreshed first (clock skew, a request in flight)."""


class SignInError(AiwfError):
    """The user pool refused: wrong user or password, a password to change first, no session to refresh."""

    def __init__(self, message: str, code: str = "SIGN_IN_FAILED") -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class UserPool:
    """The stage's user pool and its app client (outputs `userPoolId`, `userPoolClientId`).

    `endpoint_url` is the embedded AWS on the local stack (`awsEndpointUrl`), None for Cognito in
    the pool's region; `credentials` are the local stack's `awsCredentials` (for `admin` sign-in),
    None for the AWS credential chain."""

    user_pool_id: str
    client_id: str
    endpoint_url: str | None = None
    credentials: Mapping[str, str] | None = None

    @property
    def region(self) -> str:
        """A pool id is `<region>_<id>`."""
        return self.user_pool_id.split("_", 1)[0]

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any]) -> UserPool:
        pool_id, client_id = outputs.get("userPoolId"), outputs.get("userPoolClientId")
        if not pool_id or not client_id:
            raise StackOutputsError("the stack outputs have no userPoolId / userPoolClientId (a user pool)")
        credentials = outputs.get("awsCredentials")
        return cls(
            str(pool_id),
            str(client_id),
            outputs.get("awsEndpointUrl") or None,
            dict(credentials) if isinstance(credentials, Mapping) else None,
        )

    def cognito(self, *, signed: bool) -> Any:
        """A boto3 client of the pool's Cognito. User sign-in and refresh are unsigned calls (AWS
        serves them without credentials); `signed` uses AWS credentials for the admin flow."""
        import boto3  # imported when used: boto3 takes a while to import, and most commands never sign in
        from botocore import UNSIGNED
        from botocore.config import Config

        options: dict[str, Any] = {"region_name": self.region, "endpoint_url": self.endpoint_url}
        if not signed:
            options["config"] = Config(signature_version=UNSIGNED)
        elif self.credentials:
            options["aws_access_key_id"] = self.credentials.get("accessKeyId")
            options["aws_secret_access_key"] = self.credentials.get("secretAccessKey")
        return boto3.client("cognito-idp", **options)


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified: the client reads its own token's expiry and tenant (the
    APIs verify the signature)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise SignInError(f"the user pool answered with a token that is not a JWT: {exc}") from None
    if not isinstance(claims, dict):
        raise SignInError("the user pool answered with a token whose claims are not an object")
    return claims


@dataclass(frozen=True)
class Session:
    """A user's tokens for one user pool; `expires_at` is the ID token's `exp` (epoch seconds)."""

    user_pool_id: str
    client_id: str
    username: str
    id_token: str
    refresh_token: str
    expires_at: float

    @property
    def claims(self) -> dict[str, Any]:
        return claims_of(self.id_token)

    @property
    def tenant(self) -> str | None:
        tenant = self.claims.get("custom:tenant")
        return str(tenant) if tenant is not None else None

    @property
    def groups(self) -> list[str]:
        return [str(group) for group in self.claims.get("cognito:groups") or []]

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at - REFRESH_MARGIN_SECONDS

    def belongs_to(self, pool: UserPool) -> bool:
        """A session of another pool (a local stack started afresh, another stage) is not used."""
        return (self.user_pool_id, self.client_id) == (pool.user_pool_id, pool.client_id)

    def refreshed(self, pool: UserPool) -> Session:
        """A new ID token from the refresh token (REFRESH_TOKEN_AUTH); SignInError when it is refused."""
        from botocore.exceptions import ClientError

        try:
            answer = pool.cognito(signed=False).initiate_auth(
                ClientId=pool.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": self.refresh_token},
            )
        except ClientError as exc:
            raise SignInError(f"the session of {self.username} has ended ({_reason(exc)}): run aiwf login") from None
        result = answer["AuthenticationResult"]
        # Cognito answers a refresh without a new refresh token unless rotation is on: keep ours.
        kept = result.get("RefreshToken") or self.refresh_token
        return _from_result(pool, self.username, {**result, "RefreshToken": kept})

    def to_json(self) -> dict[str, Any]:
        return {
            "userPoolId": self.user_pool_id,
            "clientId": self.client_id,
            "username": self.username,
            "idToken": self.id_token,
            "refreshToken": self.refresh_token,
            "expiresAt": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Session:
        return cls(
            str(data["userPoolId"]),
            str(data["clientId"]),
            str(data["username"]),
            str(data["idToken"]),
            str(data["refreshToken"]),
            float(data["expiresAt"]),
        )

    def save(self, path: Path) -> None:
        """Write the session readable by its owner only (0600), created so: never briefly wider."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask or an older file said
            json.dump(self.to_json(), file, indent=2)
            file.write("\n")
        tmp.replace(path)


def sign_in(pool: UserPool, username: str, password: str, *, admin: bool = False) -> Session:
    """Sign `username` in: USER_SRP_AUTH (the password is proven, never sent), or with `admin`
    ADMIN_USER_PASSWORD_AUTH signed with AWS credentials (operators' scripts)."""
    from botocore.exceptions import ClientError, NoCredentialsError

    try:
        if admin:
            answer = pool.cognito(signed=True).admin_initiate_auth(
                UserPoolId=pool.user_pool_id,
                ClientId=pool.client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
        else:
            from pycognito.aws_srp import AWSSRP  # the SRP maths of a maintained library, not our own

            srp = AWSSRP(
                username=username,
                password=password,
                pool_id=pool.user_pool_id,
                client_id=pool.client_id,
                client=pool.cognito(signed=False),
            )
            answer = srp.authenticate_user()
    except NoCredentialsError:
        raise SignInError("--admin signs with AWS credentials and none were found", "NO_CREDENTIALS") from None
    except ClientError as exc:
        raise SignInError(f"{username} could not sign in: {_reason(exc)}") from None
    except Exception as exc:  # pycognito's challenge exceptions: a new password or MFA is asked for
        name = type(exc).__name__
        if name == "ForceChangePasswordException":
            raise SignInError(f"{username} must set a new password first", "NEW_PASSWORD_REQUIRED") from None
        if "MFA" in name:
            raise SignInError(f"{username} has multi-factor sign-in, which aiwf login does not do", "MFA") from None
        raise
    if "AuthenticationResult" not in answer:
        challenge = answer.get("ChallengeName", "an unknown challenge")
        if challenge == "NEW_PASSWORD_REQUIRED":
            raise SignInError(f"{username} must set a new password first", "NEW_PASSWORD_REQUIRED")
        raise SignInError(f"the user pool asks for {challenge}, which aiwf login does not answer", "CHALLENGE")
    return _from_result(pool, username, answer["AuthenticationResult"])


def _from_result(pool: UserPool, username: str, result: Mapping[str, Any]) -> Session:
    id_token = str(result["IdToken"])
    claims = claims_of(id_token)
    expires_at = float(claims.get("exp") or time.time() + float(result.get("ExpiresIn") or 3600))
    return Session(
        pool.user_pool_id,
        pool.client_id,
        str(claims.get("cognito:username") or username),
        id_token,
        str(result["RefreshToken"]),
        expires_at,
    )


def _reason(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")


# -- where a session is kept ------------------------------------------------------------------------
def session_path(*, outputs_file: str | Path | None = None, stack: str | None = None) -> Path:
    """The session file of a stack: a deployed stage's under the user's config directory
    (`$XDG_CONFIG_HOME/aiwf/sessions/<stack>.json`, else `~/.config/...`), the local stack's
    beside its outputs (`.local/session.json`), so a fresh `.local/` forgets it too."""
    if stack:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        return base / "aiwf" / "sessions" / f"{stack}.json"
    if outputs_file is not None:
        return Path(outputs_file).parent / SESSION_FILE
    return LOCAL_SESSION


def load(path: Path, pool: UserPool | None = None) -> Session | None:
    """The session kept at `path`, or None (none kept, unreadable, or of another pool than `pool`)."""
    try:
        session = Session.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pool is not None and not session.belongs_to(pool):
        return None
    return session


def forget(path: Path) -> bool:
    """`aiwf logout`: remove the session file; False when there was none."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class SessionAuth(httpx.Auth):
    """Sends each request as the signed-in user (`Authorization: <ID token>`, no API key),
    refreshing the ID token when it is about to expire and keeping the new one in the file."""

    def __init__(self, session: Session, pool: UserPool, path: Path | None = None) -> None:
        self.session = session
        self.pool = pool
        self.path = path

    def id_token(self) -> str:
        """A valid ID token: the kept one, or a refreshed one (saved) when it is about to expire."""
        if self.session.expired():
            self.session = self.session.refreshed(self.pool)
            if self.path is not None:
                self.session.save(self.path)
        return self.session.id_token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.id_token()
        request.headers.pop("x-api-key", None)  # one credential: the user's, never the service key too
        yield request
