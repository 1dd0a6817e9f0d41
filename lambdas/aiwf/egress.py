"""The egress policy: every outbound call a flow can cause goes through `request`.

A flow document is untrusted code, and its `http` steps, `poll` checks, `notify.url` and the
stage's OpenAI-compatible model endpoint all turn a string into a connection made from inside
the backend. Without a policy, that string can name the instance metadata service, the
embedded AWS of the local stack, the stack's own APIs or a private network. So, per request and
per redirect hop:

1. only `http` and `https` URLs;
2. the host name is checked against the names refused outright (the stack's own APIs, the
   stage's `denyHosts`);
3. the name is resolved once, and EVERY address of the answer must pass (one bad address
   refuses the request: a DNS answer may not smuggle a private address in beside a public one);
4. the connection goes to an address that was checked (pinned), while the Host header, TLS SNI
   and certificate check use the original name: a second DNS answer (rebinding) is never asked for;
5. redirects are followed here, at most `MAX_REDIRECTS`, each hop checked like the first.

Refusals are `EgressDenied` step errors (not retryable: the same URL will be refused again).
Network failures stay `OSError`s for the caller to name in its own terms.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from functools import lru_cache
from urllib.parse import quote, urljoin, urlsplit

from .errors import StepError
from .settings import EgressSettings, egress_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_REDIRECTS = 5
_READ_CHUNK = 65_536  # bytes per read of a capped response body
SCHEMES = {"http": 80, "https": 443}
USER_AGENT = "aiwf-egress"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Credentials meant for one origin never travel to another on a redirect.
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
PRIVATE = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# The stack's own APIs in the cloud, by the default host names API Gateway and AppSync give them.
# Their ids are not known to the functions: the APIs invoke the functions, so passing the ids in
# would make the functions depend on the APIs (a cycle). Every such API of the stack's region is refused.
OWN_API_PATTERNS = (
    "*.execute-api.{region}.amazonaws.com",
    "*.appsync-api.{region}.amazonaws.com",
    "*.appsync-realtime-api.{region}.amazonaws.com",
)
_OWN_API_REASON = "an API Gateway or AppSync API of the stack's region, as the stack's own APIs are"
_REGION_KEYS = ("AWS_REGION", "AWS_DEFAULT_REGION")


class EgressDenied(StepError):
    """The egress policy refused a URL (the class name is the error name, as Lambda reports it)."""

    def __init__(self, message: str, url: str, **details: object) -> None:
        super().__init__("EgressDenied", message, details={"url": url, **details}, retryable=False)


class InvalidRequest(StepError):
    """A request http.client refuses to write (a control character in a header or the method)."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__("InvalidRequest", message, details={"url": url}, retryable=False)


class ResponseTooLarge(StepError):
    """The answer's body is over the caller's limit: refused after reading at most limit + 1 bytes."""

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(
            "ResponseTooLarge",
            f"{url} answered with a body over the limit of {limit} bytes",
            details={"url": url, "limitBytes": limit},
        )


class TooManyRedirects(StepError):
    def __init__(self, url: str) -> None:
        super().__init__(
            "TooManyRedirects",
            f"{url} redirected more than {MAX_REDIRECTS} times",
            details={"url": url, "maxRedirects": MAX_REDIRECTS},
            retryable=False,
        )


@dataclass(frozen=True)
class DeniedEndpoint:
    """Addresses refused at one port (or every port), with the reason shown in the error."""

    networks: tuple[IPNetwork, ...]
    port: int | None
    reason: str

    def matches(self, address: IPAddress, port: int) -> bool:
        return (self.port is None or self.port == port) and any(address in net for net in self.networks)


@dataclass(frozen=True)
class DeniedName:
    """A host name (exact, or `*.suffix`), at one port or every port."""

    pattern: str
    port: int | None
    reason: str

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.pattern.startswith("*."):
            return host.endswith(self.pattern[1:])
        return host == self.pattern


@dataclass(frozen=True)
class Policy:
    allow_loopback: bool = False
    allow_private_networks: bool = False
    denied_names: tuple[DeniedName, ...] = ()
    denied_endpoints: tuple[DeniedEndpoint, ...] = ()
    # Deny entries that do not parse: the policy fails closed (every URL refused) rather than
    # silently dropping a rule the operator meant to have.
    invalid_entries: tuple[str, ...] = ()

    def check_name(self, url: str, host: str, port: int) -> None:
        if self.invalid_entries:
            entries = ", ".join(repr(entry) for entry in self.invalid_entries)
            raise EgressDenied(f"the stage's egress.denyHosts has entries that do not parse ({entries})", url)
        for rule in self.denied_names:
            if rule.matches(host, port):
                raise EgressDenied(f"{host} is not reachable from a flow: {rule.reason}", url, host=host)

    def check_address(self, url: str, host: str, address: IPAddress, port: int) -> None:
        for endpoint in self.denied_endpoints:
            if endpoint.matches(address, port):
                raise EgressDenied(_denied(host, address, port, endpoint.reason), url, host=host, address=str(address))
        reason = self._address_reason(address)
        if reason:
            raise EgressDenied(_denied(host, address, port, reason), url, host=host, address=str(address))

    def _address_reason(self, address: IPAddress) -> str | None:
        """Why this address is refused whatever the port, or None."""
        if address.is_unspecified or address in THIS_NETWORK:
            return "an unspecified address"
        if address in METADATA:
            return "the cloud metadata service"
        if any(address in net for net in LINK_LOCAL):
            return "a link-local address"
        if address.is_multicast:
            return "a multicast address"
        if any(address in net for net in LOOPBACK):
            return None if self.allow_loopback else "a loopback address (the stage's egress.allowLoopback is false)"
        if any(address in net for net in PRIVATE):
            if self.allow_private_networks:
                return None
            return "a private network address (the stage's egress.allowPrivateNetworks is false)"
        if not address.is_global:
            return "a reserved address"
        return None


def _denied(host: str, address: IPAddress, port: int, reason: str) -> str:
    where = host if host == str(address) else f"{host} ({address})"
    return f"{where} port {port} is not reachable from a flow: {reason}"


# -- the policy from the function's environment ---------------------------------------------------


def policy_from_settings(settings: EgressSettings, environ: Mapping[str, str]) -> Policy:
    """The stage's settings, plus what is always refused: the embedded AWS and the stack's own APIs."""
    names: list[DeniedName] = []
    endpoints: list[DeniedEndpoint] = []
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        names += [
            DeniedName(pattern.format(region=region.lower()), None, _OWN_API_REASON) for pattern in OWN_API_PATTERNS
        ]
    for key, value in sorted(environ.items()):
        # AWS_ENDPOINT_URL (and its per-service variants) is where this function's AWS SDK calls
        # go: on the local stack, the embedded AWS, which must never be a flow's target.
        if key == "AWS_ENDPOINT_URL" or key.startswith("AWS_ENDPOINT_URL_"):
            parts = urlsplit(value)
            if parts.hostname:
                port = parts.port or SCHEMES.get(parts.scheme, 80)
                rule_names, rule_endpoints = _rule(parts.hostname, port, "the AWS endpoint of this function")
                names += rule_names
                endpoints += rule_endpoints
    invalid: list[str] = []
    for entry in settings.deny_hosts:
        try:
            rule_names, rule_endpoints = _parse_deny_entry(entry)
        except ValueError:
            invalid.append(entry)
            continue
        names += rule_names
        endpoints += rule_endpoints
    return Policy(
        allow_loopback=settings.allow_loopback,
        allow_private_networks=settings.allow_private_networks,
        denied_names=tuple(names),
        denied_endpoints=tuple(endpoints),
        invalid_entries=tuple(invalid),
    )


def _parse_deny_entry(entry: str) -> tuple[list[DeniedName], list[DeniedEndpoint]]:
    """`name`, `*.suffix`, `name:port`, an IP address, `[v6]:port`, `ip:port` or a CIDR network."""
    entry = entry.strip().lower()
    reason = "denied by the stage's egress.denyHosts"
    if not entry:
        return [], []
    if "/" in entry:
        return [], [DeniedEndpoint((ipaddress.ip_network(entry, strict=False),), None, reason)]
    host, port = entry, None
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif entry.count(":") == 1:
        host, _, text = entry.partition(":")
        port = int(text)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return _rule(host, port, reason)


def _rule(host: str, port: int | None, reason: str) -> tuple[list[DeniedName], list[DeniedEndpoint]]:
    """Refuse a host by name and, for an address, by address; a loopback address at a port
    stands for every loopback address at that port (127.0.0.2 reaches a server on 0.0.0.0 too)."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address = _address(host)
    except ValueError:
        return [DeniedName(host, port, reason)], []
    networks: tuple[IPNetwork, ...] = (ipaddress.ip_network(address),)
    if port is not None and any(address in net for net in LOOPBACK):
        networks = LOOPBACK
    return [], [DeniedEndpoint(networks, port, reason)]


@lru_cache(maxsize=8)
def _cached_policy(settings: EgressSettings, environ: tuple[tuple[str, str], ...]) -> Policy:
    return policy_from_settings(settings, dict(environ))


def current_policy() -> Policy:
    """The policy of this function's environment (rebuilt only when the environment changes)."""
    relevant = tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL") or k in _REGION_KEYS)
    )
    return _cached_policy(egress_settings(), relevant)


# -- checking a URL ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A URL that passed the policy: where to connect (checked addresses) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def _address(text: str) -> IPAddress:
    """The address as the policy judges it: an IPv4 address carried in IPv6 is judged as IPv4."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
        if address in NAT64:  # a NAT64 gateway forwards 64:ff9b::a9fe:a9fe to 169.254.169.254
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def check_url(url: str, policy: Policy | None = None) -> Target:
    """Resolve `url`'s host and check every address; the Target to connect to, or EgressDenied."""
    policy = policy or current_policy()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressDenied(f"{url!r} is not a valid URL: {exc}", url) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise EgressDenied(f"only http and https URLs are allowed, not {scheme or 'a URL without a scheme'}", url)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise EgressDenied(f"{url!r} names no host", url)
    try:
        host = host.encode("idna").decode("ascii")  # the name DNS and the Host header see
    except UnicodeError:
        raise EgressDenied(f"{host!r} is not a valid host name", url) from None
    port = port or SCHEMES[scheme]
    policy.check_name(url, host, port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0])
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise OSError(f"cannot resolve {host}: no address")
    for text in addresses:
        policy.check_address(url, host, _address(text), port)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # As browsers and requests do: a space or non-ASCII character in a rendered template is sent
    # percent-encoded; what is already encoded (and every reserved character) is left alone.
    path = quote(path, safe="!#$%&'()*+,/:;=?@[]~")
    return Target(url, scheme, host, port, path, tuple(addresses))


# -- connecting to a checked address --------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a checked address; Host stays the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = target.addresses

    def _raw_socket(self) -> socket.socket:
        error: OSError | None = None
        for address in self._addresses:
            try:
                sock = socket.create_connection((address, self.port), self.timeout)
            except OSError as exc:
                error = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise error or OSError("no address to connect to")

    def connect(self) -> None:
        self.sock = self._raw_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """TLS to a checked address: SNI and the certificate check use the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target, timeout)
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        self.sock = self._tls.wrap_socket(self._raw_socket(), server_hostname=self.host)


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes
    url: str = ""
    redirects: list[str] = field(default_factory=list)


def _read_body(answer: http.client.HTTPResponse, url: str, limit: int | None) -> bytes:
    """The whole body, or ResponseTooLarge as soon as it passes `limit` (a declared length over it
    refuses before reading): never more than limit + 1 bytes are taken from the connection."""
    if limit is None:
        return answer.read()
    declared = answer.getheader("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise ResponseTooLarge(url, limit)
    parts: list[bytes] = []
    size = 0
    while chunk := answer.read(min(_READ_CHUNK, limit + 1 - size)):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(url, limit)
    return b"".join(parts)


def _send(
    target: Target,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
    max_body_bytes: int | None = None,
) -> Response:
    connection_type = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_type(target, timeout)
    try:
        try:
            connection.request(method, target.path, body=body, headers=headers)
        except OSError:
            raise  # unreachable, timed out, TLS refused (a certificate error is a ValueError too)
        except (http.client.InvalidURL, ValueError) as exc:
            raise InvalidRequest(f"{method} {target.url}: the request cannot be sent: {exc}", target.url) from None
        answer = connection.getresponse()
        return Response(answer.status, answer.headers, _read_body(answer, target.url, max_body_bytes), target.url)
    except http.client.HTTPException as exc:
        raise OSError(f"{target.host} sent a broken HTTP answer: {exc!s}") from exc
    finally:
        connection.close()


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10,
    policy: Policy | None = None,
    max_body_bytes: int | None = None,
) -> Response:
    """Send one request under the policy, following redirects (each hop checked); any status.

    Raises EgressDenied (refused), TooManyRedirects, InvalidRequest (a header or method http.client
    cannot write), ResponseTooLarge (a body, of any hop, over `max_body_bytes`), or OSError
    (unreachable, timeout, bad answer).
    """
    policy = policy or current_policy()
    method = method.upper()
    sent = {k: v for k, v in (headers or {}).items() if k.lower() != "host"}  # Host is the URL's, always
    if not any(k.lower() == "user-agent" for k in sent):
        sent["User-Agent"] = USER_AGENT
    visited: list[str] = []
    target = check_url(url, policy)
    while True:
        response = _send(target, method, sent, body, timeout, max_body_bytes)
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or not location:
            response.redirects = visited
            return response
        if len(visited) >= MAX_REDIRECTS:
            raise TooManyRedirects(url)
        visited.append(target.url)
        next_target = check_url(urljoin(target.url, location), policy)
        if (response.status == 303 and method != "HEAD") or (response.status in (301, 302) and method == "POST"):
            method, body = "GET", None
            sent = {k: v for k, v in sent.items() if k.lower() not in ("content-type", "content-length")}
        if (next_target.scheme, next_target.host, next_target.port) != (target.scheme, target.host, target.port):
            sent = {k: v for k, v in sent.items() if k.lower() not in _ORIGIN_BOUND_HEADERS}
        target = next_target
