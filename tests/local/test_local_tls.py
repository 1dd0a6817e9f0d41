"""The TLS twins: the local CA and server certificate (`local/tls.py`), and a stack serving over TLS.

The certificates are checked the way clients check them: a real TLS handshake against Python's
ssl with strict X.509 verification (what Python 3.13 turns on by default), by name and by address.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from cryptography import x509

from local import LocalStack, tls
from local.stack import PortInUse, bind_listening_socket
from tests.local.test_local_stack import PROGRAM

# -- the CA and the server certificate ---------------------------------------------------------


def _handshake(files: tls.TlsFiles, server_hostname: str) -> dict:
    """Serve one TLS handshake with `files` on loopback; return the peer certificate the client verified."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.certificate, files.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True) as wrapped:
                wrapped.recv(1)
        except (ssl.SSLError, OSError):
            pass  # the client refused the certificate: it says why

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(files.ca))
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname=server_hostname) as wrapped,
        ):
            peer = wrapped.getpeercert()
            wrapped.sendall(b"x")
            return peer
    finally:
        thread.join(timeout=10)
        listener.close()


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_the_server_certificate_verifies_against_the_ca(tmp_path: Path, name: str) -> None:
    files = tls.ensure_certificates(tmp_path)
    peer = _handshake(files, name)
    assert ("DNS", "localhost") in peer["subjectAltName"] and ("IP Address", "127.0.0.1") in peer["subjectAltName"]


def test_another_ca_does_not_verify_it(tmp_path: Path) -> None:
    files = tls.ensure_certificates(tmp_path / "one")
    other = tls.ensure_certificates(tmp_path / "two")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls.TlsFiles(other.ca, files.certificate, files.key), "localhost")


def test_certificates_are_made_once_and_reused(tmp_path: Path) -> None:
    first = tls.ensure_certificates(tmp_path)
    written = {path: path.read_bytes() for path in (first.ca, first.certificate, first.key, tmp_path / "ca-key.pem")}
    again = tls.ensure_certificates(tmp_path)
    assert again == first
    assert {path: path.read_bytes() for path in written} == written
    for key in (first.key, tmp_path / "ca-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, f"{key.name} is readable by others"


def test_a_certificate_without_a_needed_name_is_reissued_by_the_same_ca(tmp_path: Path) -> None:
    first = tls.ensure_certificates(tmp_path)
    ca, certificate = first.ca.read_bytes(), first.certificate.read_bytes()
    again = tls.ensure_certificates(tmp_path, [*tls.DEFAULT_HOSTS, "devbox.internal"])
    assert again.ca.read_bytes() == ca and again.certificate.read_bytes() != certificate
    _handshake(again, "devbox.internal")


def test_an_expiring_certificate_is_reissued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls, "SERVER_DAYS", 10)  # inside the renewal window from the start
    short = tls.ensure_certificates(tmp_path)
    old = short.certificate.read_bytes()
    monkeypatch.undo()
    renewed = tls.ensure_certificates(tmp_path)
    assert renewed.certificate.read_bytes() != old
    expires = x509.load_pem_x509_certificate(renewed.certificate.read_bytes()).not_valid_after_utc
    assert expires - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)


def test_a_damaged_ca_is_replaced_with_a_new_ca_and_certificate(tmp_path: Path) -> None:
    first = tls.ensure_certificates(tmp_path)
    certificate = first.certificate.read_bytes()
    (tmp_path / "ca-key.pem").write_text("not a key")
    again = tls.ensure_certificates(tmp_path)
    assert again.certificate.read_bytes() != certificate
    _handshake(again, "localhost")


def test_twin_urls_keep_host_and_path_and_take_tls_schemes_and_port() -> None:
    assert tls.twin_url("http://127.0.0.1:4000/dev", 4001) == "https://127.0.0.1:4001/dev"
    assert tls.twin_url("ws://127.0.0.1:4000/graphql/realtime", 4001) == "wss://127.0.0.1:4001/graphql/realtime"
    assert tls.twin_url("http://[::1]:4000/graphql?x=1", 4001) == "https://[::1]:4001/graphql?x=1"
    with pytest.raises(ValueError, match="not an http"):
        tls.twin_url("https://127.0.0.1:4000/dev", 4001)
    outputs = {"taskApiUrl": "http://127.0.0.1:9/dev", "apiKey": "k", "stage": "dev"}
    assert tls.twin_outputs(outputs, 10, Path("/ca.pem")) == {
        "taskApiUrl": "https://127.0.0.1:10/dev",
        "caBundle": "/ca.pem",
    }
    assert tls.twin_port(4000) == 4001 and tls.twin_port(0) == 0


def test_a_busy_tls_port_says_so_in_one_line() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        with pytest.raises(PortInUse) as raised:
            bind_listening_socket("127.0.0.1", port, "TLS_PORT")
        assert str(raised.value) == f"TLS port {port} is in use (another make dev?): TLS_PORT={port + 10} make dev"
    finally:
        taken.close()


# -- a stack serving its twins -------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, handler_dir: str) -> Path:
    root = tmp_path_factory.mktemp("tiny-tls")
    (root / "Pulumi.yaml").write_text("name: tiny\nruntime: python\nconfig:\n  timeout:\n    default: 5\n")
    for stage in ("tls", "tls2"):  # stages of their own: tiny-dev-* may be held by another module's stack
        (root / f"Pulumi.{stage}.yaml").write_text(
            f"config:\n  aws:region: us-east-1\n  tiny:logLevel: INFO\n  tiny:codeDir: {handler_dir}\n"
        )
    (root / "__main__.py").write_text(PROGRAM)
    return root


@pytest.fixture(scope="module")
def stack(project: Path) -> Iterator[LocalStack]:
    with LocalStack(stage="tls", port=0, project_dir=project, outputs_path=project / ".local" / "outputs.json") as s:
        yield s


def test_the_tls_output_names_the_twins_and_the_ca(stack: LocalStack, project: Path) -> None:
    twins = stack.outputs["tls"]
    assert stack.tls_port not in (0, stack.port)
    assert twins == {
        "taskApiUrl": f"https://127.0.0.1:{stack.tls_port}/tls",
        "caBundle": str(project / ".local" / "tls" / "ca.pem"),
    }
    assert json.loads((project / ".local" / "outputs.json").read_text())["tls"] == twins


def test_the_twin_serves_what_the_plain_port_serves(stack: LocalStack) -> None:
    twins, headers = stack.outputs["tls"], {"x-api-key": stack.outputs["apiKey"]}
    plain = requests.get(stack.outputs["taskApiUrl"] + "/items", headers=headers, timeout=30)
    secure = requests.get(twins["taskApiUrl"] + "/items", headers=headers, timeout=30, verify=twins["caBundle"])
    assert secure.status_code == plain.status_code == 201
    event = secure.json()["event"]
    assert event["path"] == "/items" and event["headers"]["x-api-key"] == stack.outputs["apiKey"]
    refused = requests.get(twins["taskApiUrl"] + "/items", timeout=30, verify=twins["caBundle"])
    assert (refused.status_code, refused.json()) == (403, {"message": "Forbidden"})  # no gateway responses here
    with pytest.raises(requests.exceptions.SSLError):  # verification is on: only the CA makes it pass
        requests.get(twins["taskApiUrl"] + "/items", headers=headers, timeout=30)


def _free_port_and_the_next() -> int:
    """A free port whose next one (the TLS twin's) is free too: the system's ephemeral ports are
    handed to every client connection of the session, so a lone free port's neighbour may not be."""
    for _ in range(50):
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
            try:
                with socket.create_server(("127.0.0.1", port + 1)):
                    return port
            except OSError:
                continue
    raise AssertionError("no two free ports side by side")


def test_the_next_start_reuses_the_ca_and_takes_the_next_port(
    stack: LocalStack, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = Path(stack.outputs["tls"]["caBundle"]).read_bytes()
    port = _free_port_and_the_next()
    idle = requests.Session()  # a client idling in its connection pool when the stack stops
    try:
        with LocalStack(stage="tls2", port=port, project_dir=project) as again:
            twins = again.outputs["tls"]
            assert again.tls_port == port + 1 and twins["taskApiUrl"] == f"https://127.0.0.1:{port + 1}/tls2"
            assert Path(twins["caBundle"]).read_bytes() == ca
            headers = {"x-api-key": again.outputs["apiKey"]}
            answer = idle.get(twins["taskApiUrl"] + "/items", headers=headers, timeout=30, verify=twins["caBundle"])
            assert answer.status_code == 201
        # the idle TLS connection did not hold the stop up (uvicorn would wait for its close_notify)
        assert "still had requests in flight" not in caplog.text
    finally:
        idle.close()


def test_a_stopping_twin_does_not_wait_for_idle_clients(tmp_path: Path) -> None:
    files = tls.ensure_certificates(tmp_path)

    async def app(scope: dict, receive: object, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sock = bind_listening_socket("127.0.0.1", 0, "TLS_PORT")
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", ssl_certfile=str(files.certificate), ssl_keyfile=str(files.key)
    )
    server = tls.TlsServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    idle = requests.Session()
    try:
        while not server.started:
            assert thread.is_alive()
            time.sleep(0.01)
        url = f"https://127.0.0.1:{sock.getsockname()[1]}/"
        assert idle.get(url, timeout=10, verify=str(files.ca)).text == "ok"
        assert len(server.server_state.connections) == 1  # kept alive, idle in the client's pool
        server.should_exit = True
        thread.join(timeout=15)  # TLS would wait 30 s for the client's close_notify
        assert not thread.is_alive() and not server.server_state.connections
    finally:
        idle.close()
        sock.close()
