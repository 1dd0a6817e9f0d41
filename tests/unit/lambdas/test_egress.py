"""The egress policy (aiwf.egress): what a flow's URLs may reach, checked without any network.

DNS is `socket.getaddrinfo`, replaced here by a table of answers; the requests themselves are
scripted by replacing `_send`, except where a loopback server shows what really goes on the wire
(the pinned address and the Host header).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from aiwf import egress
from aiwf.egress import EgressDenied, Policy, Response, TooManyRedirects, check_url, policy_from_settings
from aiwf.errors import StepError
from aiwf.http_client import call_http
from aiwf.settings import EgressSettings, egress_settings

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:4700:4700::1111"


class Dns:
    """Fake resolver: host -> addresses; records every lookup."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    def __call__(self, host: str, port: object, *args: object, **kwargs: object) -> list[tuple]:
        self.lookups.append(host)
        try:
            answer = self.answers[host]
        except KeyError:
            try:
                answer = [str(egress._address(host))]  # an address literal resolves to itself
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answer]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    resolver = Dns()
    monkeypatch.setattr(egress.socket, "getaddrinfo", resolver)
    return resolver


def policy(*, loopback: bool = False, private: bool = False, deny: tuple[str, ...] = (), **environ: str) -> Policy:
    return policy_from_settings(EgressSettings(loopback, private, deny), environ)


def refused(url: str, rules: Policy) -> str:
    with pytest.raises(EgressDenied) as caught:
        check_url(url, rules)
    error = caught.value
    assert error.error_name == "EgressDenied" and error.retryable is False
    assert error.details["url"] == url
    assert "Error" not in error.message and "Exception" not in error.message, "no Python type names"
    return error.message


# -- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("169.254.10.20", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "reserved"),
        ("10.1.2.3", "private network"),
        ("172.16.0.9", "private network"),
        ("172.31.255.255", "private network"),
        ("192.168.1.1", "private network"),
        ("100.64.0.1", "private network"),
        ("fc00::1", "private network"),
        ("fd12:3456::1", "private network"),
        ("127.0.0.1", "loopback"),
        ("127.3.2.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_each_refused_range_is_refused_by_default(dns: Dns, address: str, reason: str) -> None:
    dns.answers["service.example"] = [address]
    message = refused("http://service.example/path", policy())
    assert reason in message
    assert "service.example" in message and str(egress._address(address)) in message


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V6])
def test_a_public_address_is_allowed_and_is_what_gets_connected_to(dns: Dns, address: str) -> None:
    dns.answers["api.example.com"] = [address]
    target = check_url("https://api.example.com/v1/items?q=1", policy())
    assert (target.host, target.port, target.path, target.addresses) == (
        "api.example.com",
        443,
        "/v1/items?q=1",
        (address,),
    )


def test_loopback_is_allowed_only_when_the_stage_allows_it(dns: Dns) -> None:
    assert "egress.allowLoopback is false" in refused("http://127.0.0.1:8080/", policy())
    assert "egress.allowLoopback is false" in refused("http://[::1]:8080/", policy(private=True))
    assert check_url("http://127.0.0.1:8080/", policy(loopback=True)).addresses == ("127.0.0.1",)
    assert check_url("http://[::1]:8080/", policy(loopback=True)).addresses == ("::1",)


def test_private_networks_are_allowed_only_when_the_stage_allows_them(dns: Dns) -> None:
    dns.answers["db.internal"] = ["10.0.3.4"]
    assert "egress.allowPrivateNetworks is false" in refused("http://db.internal/", policy(loopback=True))
    assert check_url("http://db.internal/", policy(private=True)).addresses == ("10.0.3.4",)


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "169.254.1.1", "0.0.0.0", "224.0.0.1"])
def test_metadata_link_local_and_unspecified_are_refused_whatever_the_stage_allows(dns: Dns, address: str) -> None:
    dns.answers["anything.example"] = [address]
    refused("http://anything.example/", policy(loopback=True, private=True))


# -- what is always refused: the embedded AWS, the stack's own APIs ---------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/",
        "http://127.0.0.1:5000/dynamodb",
        "http://localhost:5000/",
        "http://127.0.0.2:5000/",
        "http://[::1]:5000/",
        "http://LOCALHOST.:5000/",
    ],
)
def test_the_embedded_aws_is_refused_even_with_loopback_allowed(dns: Dns, url: str) -> None:
    dns.answers["localhost"] = ["127.0.0.1"]
    rules = policy(loopback=True, AWS_ENDPOINT_URL="http://127.0.0.1:5000")
    assert "the AWS endpoint of this function" in refused(url, rules)


def test_only_the_embedded_aws_port_is_refused_on_loopback(dns: Dns) -> None:
    rules = policy(loopback=True, AWS_ENDPOINT_URL="http://127.0.0.1:5000")
    assert check_url("http://127.0.0.1:5001/", rules).port == 5001


def test_per_service_aws_endpoints_are_refused_too(dns: Dns) -> None:
    rules = policy(loopback=True, AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:8000")
    refused("http://127.0.0.1:8000/", rules)


@pytest.mark.parametrize(
    "url",
    [
        "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod/tasks",
        "https://abcdefghijklmnopqrstuvwxyz.appsync-api.eu-west-1.amazonaws.com/graphql",
        "wss://abcdefghijklmnopqrstuvwxyz.appsync-realtime-api.eu-west-1.amazonaws.com/graphql".replace("wss", "https"),
        "https://A1B2C3D4E5.Execute-Api.EU-WEST-1.amazonaws.com./prod/tasks",
    ],
)
def test_the_stacks_own_apis_are_refused_by_name_before_any_lookup(dns: Dns, url: str) -> None:
    rules = policy(loopback=True, private=True, AWS_REGION="eu-west-1")
    assert "API Gateway or AppSync API of the stack's region" in refused(url, rules)
    assert dns.lookups == [], "refused by name, without asking DNS"


def test_api_gateway_of_another_region_is_not_the_stacks_own(dns: Dns) -> None:
    dns.answers["a1b2c3d4e5.execute-api.us-west-2.amazonaws.com"] = [PUBLIC_V4]
    check_url("https://a1b2c3d4e5.execute-api.us-west-2.amazonaws.com/prod", policy(AWS_REGION="eu-west-1"))


@pytest.mark.parametrize(
    ("entry", "url"),
    [
        ("internal.example.com", "https://internal.example.com/"),
        ("*.corp.example.com", "https://wiki.corp.example.com/"),
        ("api.example.com:8443", "https://api.example.com:8443/"),
        ("93.184.216.0/24", "https://api.example.com/"),
        ("93.184.216.34", "https://api.example.com/"),
        ("[2606:4700:4700::1111]:443", "https://[2606:4700:4700::1111]/"),
    ],
)
def test_the_stage_deny_list_refuses_names_addresses_and_networks(dns: Dns, entry: str, url: str) -> None:
    dns.answers["api.example.com"] = [PUBLIC_V4]
    assert "egress.denyHosts" in refused(url, policy(deny=(entry,)))


@pytest.mark.parametrize("entry", ["api.example.com:http", "10.0.0.0/40", "[::1]:99999"])
def test_a_deny_list_that_does_not_parse_refuses_everything(dns: Dns, entry: str) -> None:
    dns.answers["api.example.com"] = [PUBLIC_V4]
    assert "do not parse" in refused("https://api.example.com/", policy(deny=(entry,)))


def test_a_deny_entry_with_a_port_leaves_other_ports_alone(dns: Dns) -> None:
    dns.answers["api.example.com"] = [PUBLIC_V4]
    check_url("https://api.example.com/", policy(deny=("api.example.com:8443",)))


def test_the_local_stacks_own_port_on_loopback_is_refused(dns: Dns) -> None:
    dns.answers["localhost"] = ["127.0.0.1", "::1"]
    rules = policy(loopback=True, deny=("127.0.0.1:4000",))
    refused("http://localhost:4000/tasks", rules)
    refused("http://[::1]:4000/tasks", rules)
    check_url("http://localhost:4001/", rules)


# -- DNS answers and schemes ----------------------------------------------------------------------


def test_a_dns_answer_with_one_good_and_one_bad_address_is_refused(dns: Dns) -> None:
    dns.answers["mixed.example"] = [PUBLIC_V4, "169.254.169.254"]
    assert "169.254.169.254" in refused("https://mixed.example/", policy())
    dns.answers["mixed6.example"] = [PUBLIC_V6, "10.0.0.1"]
    assert "10.0.0.1" in refused("https://mixed6.example/", policy())


def test_a_name_that_does_not_resolve_is_a_network_failure_not_a_refusal(dns: Dns) -> None:
    with pytest.raises(OSError, match=r"cannot resolve nowhere\.invalid"):
        check_url("http://nowhere.invalid/", policy())


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "example.com/path", "data:,hello"]
)
def test_only_http_and_https_urls(dns: Dns, url: str) -> None:
    assert "only http and https" in refused(url, policy())
    assert dns.lookups == []


@pytest.mark.parametrize("url", ["http:///path", "http://example.com:99999/", "http://[::1/"])
def test_malformed_urls_are_refused(dns: Dns, url: str) -> None:
    refused(url, policy())


# -- requests and redirects -----------------------------------------------------------------------


def _answer(status: int, location: str | None = None, body: bytes = b"ok") -> Response:
    headers = Message()
    if location:
        headers["Location"] = location
    return Response(status, headers, body)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list:
    """Scripted answers for egress._send; records (url, address, method, headers, body) of each request."""
    script: list[Response] = []
    sent: list = []

    def send(target, method, headers, body, timeout, max_body_bytes=None):  # type: ignore[no-untyped-def]
        sent.append((target.url, target.addresses[0], method, dict(headers), body))
        return script.pop(0)

    monkeypatch.setattr(egress, "_send", send)
    sent.append(script)  # sent[0] is the script
    return sent


def test_a_redirect_to_a_refused_address_is_refused(dns: Dns, wire: list) -> None:
    dns.answers["public.example"] = [PUBLIC_V4]
    wire[0].append(_answer(302, "http://169.254.169.254/latest/meta-data/iam/"))
    with pytest.raises(EgressDenied, match="cloud metadata"):
        egress.request("GET", "https://public.example/start", policy=policy())
    assert [call[0] for call in wire[1:]] == ["https://public.example/start"], "the refused hop was never asked"


def test_a_redirect_to_a_name_that_rebinds_to_loopback_is_refused(dns: Dns, wire: list) -> None:
    dns.answers["public.example"] = [PUBLIC_V4]
    dns.answers["evil.example"] = ["127.0.0.1"]
    wire[0].append(_answer(307, "http://evil.example:5000/"))
    with pytest.raises(EgressDenied, match="loopback"):
        egress.request("POST", "https://public.example/", body=b"{}", policy=policy())


def test_redirects_are_followed_with_each_hop_checked_and_credentials_kept_to_their_origin(
    dns: Dns, wire: list
) -> None:
    dns.answers["a.example"] = [PUBLIC_V4]
    dns.answers["b.example"] = ["93.184.216.35"]
    wire[0] += [_answer(301, "/moved"), _answer(303, "https://b.example/done"), _answer(200, body=b"fin")]
    response = egress.request(
        "POST",
        "https://a.example/start",
        headers={"Authorization": "Bearer x", "Content-Type": "application/json", "Host": "spoofed.example"},
        body=b"{}",
        policy=policy(),
    )
    assert response.status == 200 and response.body == b"fin"
    calls = wire[1:]
    assert [(url, address, method) for url, address, method, _, _ in calls] == [
        ("https://a.example/start", PUBLIC_V4, "POST"),
        ("https://a.example/moved", PUBLIC_V4, "GET"),
        ("https://b.example/done", "93.184.216.35", "GET"),
    ]
    assert all("Host" not in headers for _, _, _, headers, _ in calls), "Host is always the URL's"
    assert calls[1][3]["Authorization"] == "Bearer x" and calls[1][4] is None
    assert "Authorization" not in calls[2][3], "credentials do not follow a redirect to another origin"


def test_307_keeps_the_method_and_body(dns: Dns, wire: list) -> None:
    dns.answers["a.example"] = [PUBLIC_V4]
    wire[0] += [_answer(307, "/again"), _answer(204, body=b"")]
    egress.request("PUT", "https://a.example/x", body=b"data", policy=policy())
    assert [(call[2], call[4]) for call in wire[1:]] == [("PUT", b"data"), ("PUT", b"data")]


def test_redirects_are_bounded(dns: Dns, wire: list) -> None:
    dns.answers["loop.example"] = [PUBLIC_V4]
    wire[0] += [_answer(302, f"/hop{n}") for n in range(egress.MAX_REDIRECTS + 1)]
    with pytest.raises(TooManyRedirects) as caught:
        egress.request("GET", "https://loop.example/", policy=policy())
    assert caught.value.error_name == "TooManyRedirects" and not caught.value.retryable
    assert len(wire[1:]) == egress.MAX_REDIRECTS + 1


# -- on the wire: the pinned address, the Host header, TLS names ------------------------------------


@pytest.fixture
def loopback_server() -> Iterator[tuple[int, list[dict]]]:
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"host": self.headers["Host"], "path": self.path})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "12")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()


def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(
    dns: Dns, loopback_server: tuple[int, list[dict]]
) -> None:
    port, seen = loopback_server
    dns.answers["rebind.example"] = ["127.0.0.1"]
    response = egress.request("GET", f"http://rebind.example:{port}/x?y=1", policy=policy(loopback=True))
    assert response.status == 200
    assert seen == [{"host": f"rebind.example:{port}", "path": "/x?y=1"}]
    assert dns.lookups.count("rebind.example") == 1, "resolved once: the connection used the checked answer"


def test_tls_uses_the_original_host_name_for_sni_and_the_certificate(dns: Dns) -> None:
    dns.answers["secure.example"] = [PUBLIC_V4]
    target = check_url("https://secure.example/", policy())
    connection = egress._PinnedHTTPSConnection(target, timeout=1)
    wrapped: list[str] = []

    class Tls:
        def wrap_socket(self, sock: object, server_hostname: str) -> object:
            wrapped.append(server_hostname)
            return sock

    connection._tls = Tls()  # type: ignore[assignment]
    connection._raw_socket = lambda: "socket to " + connection._addresses[0]  # type: ignore[method-assign]
    connection.connect()
    assert wrapped == ["secure.example"]
    assert connection.sock == f"socket to {PUBLIC_V4}"
    assert egress.ssl.create_default_context().check_hostname, "certificates are verified against the name"


# -- the settings, and the steps that use the policy ------------------------------------------------


def test_settings_are_secure_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("EGRESS_ALLOW_LOOPBACK", "EGRESS_ALLOW_PRIVATE_NETWORKS", "EGRESS_DENY_HOSTS"):
        monkeypatch.delenv(key, raising=False)
    assert egress_settings() == EgressSettings(False, False, ())
    monkeypatch.setenv("EGRESS_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("EGRESS_DENY_HOSTS", " a.example , 10.0.0.0/8,")
    assert egress_settings() == EgressSettings(True, False, ("a.example", "10.0.0.0/8"))


def test_the_http_step_fails_with_egress_denied(dns: Dns, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EGRESS_ALLOW_LOOPBACK", raising=False)
    with pytest.raises(StepError) as caught:
        call_http({"url": "http://169.254.169.254/latest/meta-data/"}, {})
    assert caught.value.error_name == "EgressDenied" and not caught.value.retryable


def test_the_http_step_reaches_loopback_when_allowed_and_not_the_aws_endpoint(
    dns: Dns, monkeypatch: pytest.MonkeyPatch, loopback_server: tuple[int, list[dict]]
) -> None:
    port, _ = loopback_server
    monkeypatch.setenv("EGRESS_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    dns.answers["localhost"] = ["127.0.0.1"]
    assert call_http({"url": f"http://127.0.0.1:{port}/"}, {}) == {"ok": True}
    with pytest.raises(StepError) as caught:
        call_http({"url": "http://localhost:1/"}, {})
    assert caught.value.error_name == "EgressDenied"


def test_a_rendered_url_with_spaces_is_sent_percent_encoded(dns: Dns) -> None:
    dns.answers["api.example.com"] = [PUBLIC_V4]
    target = check_url("https://api.example.com/a b/é?q=x y&r=%2F", policy())
    assert target.path == "/a%20b/%C3%A9?q=x%20y&r=%2F"


def test_an_international_host_name_is_looked_up_in_its_ascii_form(dns: Dns) -> None:
    dns.answers["xn--bcher-kva.example"] = [PUBLIC_V4]
    assert check_url("https://bücher.example/", policy()).host == "xn--bcher-kva.example"


def test_a_header_with_a_line_break_is_an_invalid_request_not_a_crash(
    dns: Dns, loopback_server: tuple[int, list[dict]]
) -> None:
    port, seen = loopback_server
    with pytest.raises(egress.InvalidRequest) as caught:
        egress.request(
            "GET", f"http://127.0.0.1:{port}/", headers={"X-A": "1\r\nX-Injected: 1"}, policy=policy(loopback=True)
        )
    assert caught.value.error_name == "InvalidRequest" and seen == []
