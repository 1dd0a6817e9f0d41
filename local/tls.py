"""TLS twins of the local stack's APIs: a local CA, a server certificate it signs, and the twin URLs.

Some clients insist on TLS: Amplify JS derives `wss://` from any GraphQL URL and never speaks
`ws://`, so on a plain-HTTP stack it waits in `Connecting` forever. The stack therefore also serves
every route of its HTTP port on a second port with TLS (`local.stack`), and this module owns what
that needs:

- a CA the stack creates **once** under `.local/tls/` and reuses, so a user trusts it once
  (`NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`, `curl --cacert`) and it keeps working across restarts;
- a server certificate for `127.0.0.1`, `::1` and `localhost` signed by it, reissued only when it
  no longer fits (another CA, a missing name, less than 30 days left);
- the twin of each plain URL (`http` -> `https`, `ws` -> `wss`, the TLS port, the same path),
  as the local-only `tls` stack output.

Everything is made with the `cryptography` package (no `openssl` on the PATH needed). Keys are
ECDSA P-256: made in about a millisecond, and accepted by Node, Python's ssl and curl alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import uvicorn
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("127.0.0.1", "::1", "localhost")
CA_DAYS = 3650
SERVER_DAYS = 397  # the longest validity browsers accept for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)
CLOSE_NOTIFY_WAIT_SECONDS = 0.1  # how long a stopping twin waits for a client's TLS close_notify
TWIN_URL_OUTPUTS = ("taskApiUrl", "graphqlUrl", "realtimeUrl")  # the outputs that get a TLS twin
_SCHEMES = {"http": "https", "ws": "wss"}


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files a TLS twin serves with, and the CA file clients trust."""

    ca: Path  # the CA certificate: what clients add to their trust store (`caBundle`)
    certificate: Path  # the server certificate
    key: Path  # the server certificate's private key


def tls_directory(project_dir: Path) -> Path:
    return project_dir / ".local" / "tls"


def hosts_for(bind_host: str) -> list[str]:
    """The names the server certificate must cover: loopback, and the host the stack binds if it is another."""
    extra = [] if bind_host in (*DEFAULT_HOSTS, "0.0.0.0", "::", "") else [bind_host]
    return [*DEFAULT_HOSTS, *extra]


def twin_port(port: int) -> int:
    """The TLS twin's port for a plain port: the next one, or any free one when the plain port is."""
    return port + 1 if port else 0


def ensure_certificates(directory: Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> TlsFiles:
    """The CA and a server certificate for `hosts` under `directory`: reused when still good, made otherwise.

    A lock file serializes two stacks starting at once in the same checkout, so both end up
    serving certificates of the one CA on disk."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "localhost.pem", directory / "localhost-key.pem")
    ca_key_path = directory / "ca-key.pem"
    with _locked(directory / ".lock"):
        loaded = _load(files.ca, ca_key_path)
        if loaded is None:
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca_cert = _new_ca(ca_key)
            _write(ca_key_path, _key_pem(ca_key), private=True)
            _write(files.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        else:
            ca_cert, ca_key = loaded
        if not _server_certificate_fits(files.certificate, files.key, ca_cert, hosts):
            key = ec.generate_private_key(ec.SECP256R1())
            certificate = _new_server_certificate(key, ca_cert, ca_key, hosts)
            _write(files.key, _key_pem(key), private=True)
            _write(files.certificate, certificate.public_bytes(serialization.Encoding.PEM))
    return files


def twin_url(url: str, port: int) -> str:
    """`url` served by the TLS twin: `https`/`wss`, the same host and path, the twin's port."""
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme)
    if scheme is None or parts.hostname is None:
        raise ValueError(f"{url!r} is not an http:// or ws:// URL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((scheme, f"{host}:{port}", parts.path, parts.query, parts.fragment))


def twin_outputs(outputs: Mapping[str, Any], port: int, ca: Path) -> dict[str, str]:
    """The local-only `tls` output: the twin of each API URL the stack has, and the CA file."""
    twins = {name: twin_url(str(outputs[name]), port) for name in TWIN_URL_OUTPUTS if outputs.get(name)}
    return {**twins, "caBundle": str(ca)}


class TlsServer(uvicorn.Server):
    """uvicorn for a TLS twin: stops as fast as the plain server with keep-alive clients connected.

    At shutdown uvicorn closes each idle keep-alive connection. Over TLS a close first sends
    close_notify and then waits for the client's, up to 30 s: a client idling in a connection pool
    (requests, a browser, Node's keep-alive agent) sends none until it next uses the pool, so the
    stack's stop hung for its 5 s limit. A connection uvicorn is closing carries no request (one
    in flight is left to finish instead), so once it has nothing left to send it is aborted."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async def abort_closing() -> None:
            while True:
                await asyncio.sleep(CLOSE_NOTIFY_WAIT_SECONDS)
                for connection in list(self.server_state.connections):
                    transport = getattr(connection, "transport", None)
                    # closing, and everything it had to send is sent: only the client's close_notify is missing
                    if transport is not None and transport.is_closing() and not transport.get_write_buffer_size():
                        transport.abort()

        aborting = asyncio.ensure_future(abort_closing())
        try:
            await super().shutdown(sockets)
        finally:
            aborting.cancel()


# -- making and checking certificates ----------------------------------------------------------


def _new_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    # A name of its own per checkout: two CAs with one name in a trust store confuse verifiers.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aiwf local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"aiwf local CA {secrets.token_hex(4)}"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _new_server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _usage(*, key_cert_sign: bool = False, digital_signature: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _load(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """A certificate and its key from disk, or None when either is missing, unreadable or expiring."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != certificate.public_key():
        return None
    if certificate.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.UTC):
        return None
    return certificate, key


def _server_certificate_fits(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, hosts: Sequence[str]) -> bool:
    loaded = _load(cert_path, key_path)
    if loaded is None:
        return False
    certificate = loaded[0]
    try:
        certificate.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(_general_name(host) in names for host in hosts)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Write atomically (a reader never sees half a PEM), keys readable by their owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
