"""How the client authenticates each REST request: who it is to each method of the task API.

Flow registration and retirement are operators' (AWS_IAM methods): those requests are signed with
SigV4 (service `execute-api`) with the client's AWS credentials (the local stack's
`awsCredentials` output, or the standard AWS credential chain for a deployed stage). Every other
request carries the user's ID token in `Authorization` when the client has one, else the API key
in `x-api-key`. botocore signs, imported only when a request needs a signature.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx

from aiwf_sdk.errors import ForbiddenError

# (method, path) of the operator-only operations (schema/operations.json callers `operator`).
OPERATOR_ROUTES = (("PUT", re.compile(r"^/flows/[^/]+/?$")), ("DELETE", re.compile(r"^/flows/[^/]+/?$")))
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


def operator_request(method: str, path: str) -> bool:
    """Whether `METHOD path` is an operator operation (signed with SigV4)."""
    return any(method.upper() == m and pattern.match(path) for m, pattern in OPERATOR_ROUTES)


def _no_operator(why: str) -> ForbiddenError:
    return ForbiddenError(
        "FORBIDDEN", f"registering and retiring flows is an operator's (signed with AWS credentials): {why}", status=403
    )


class RequestAuth(httpx.Auth):
    """httpx auth: SigV4 for operator operations, else the ID token or the API key."""

    requires_request_body = True  # the signature covers the body

    def __init__(
        self,
        api_key: str | None,
        *,
        id_token: str | Callable[[], str] | None = None,
        aws_credentials: Mapping[str, Any] | None = None,
        base_path: str = "",
    ) -> None:
        self.api_key = api_key
        self.id_token = id_token
        self.aws_credentials = aws_credentials
        self.base_path = base_path.rstrip("/")  # the stage prefix of the URL (`/dev`)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.path
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path) :] or "/"
        if operator_request(request.method, path):
            request.headers.pop("x-api-key", None)
            self._sign(request)
        elif self.id_token:
            request.headers.pop("x-api-key", None)
            request.headers["Authorization"] = self.id_token() if callable(self.id_token) else self.id_token
        elif self.api_key:
            request.headers["x-api-key"] = self.api_key
        yield request

    def _sign(self, request: httpx.Request) -> None:
        try:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            from botocore.session import get_session
        except ImportError:
            raise _no_operator("install botocore (pip install 'aiwf-sdk[operator]')") from None

        given = self.aws_credentials
        if given:
            credentials = Credentials(given["accessKeyId"], given["secretAccessKey"], given.get("sessionToken"))
            region = given.get("region")
        else:  # a deployed stage: the operator's own credentials (environment, profile, SSO, role)
            session = get_session()
            credentials = session.get_credentials()
            region = session.get_config_variable("region")
            if credentials is None:
                raise _no_operator("no AWS credentials found (environment, profile or role)")
        found = _REGION_IN_HOST.search(request.url.host)
        region = (found.group(1) if found else None) or region or "us-east-1"
        signed = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={"content-type": request.headers.get("content-type", "application/json")},
        )
        SigV4Auth(credentials, "execute-api", region).add_auth(signed)
        for name, value in signed.headers.items():
            request.headers[name] = value
