"""Patches of moto's HTTP server and request routing (moto 5.2.5): connections kept open, CORS
preflights of a browser's AWS calls answered, per-request costs that never change paid once, routers
built under a lock."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

# Told of every request the embedded AWS answered (its WSGI environ): how
# `local.persistence` learns that a table or a bucket may have changed, without polling them.
_observers: list[Callable[[dict[str, Any]], None]] = []


def observe_requests(observer: Callable[[dict[str, Any]], None]) -> None:
    _observers.append(observer)


def unobserve_requests(observer: Callable[[dict[str, Any]], None]) -> None:
    if observer in _observers:
        _observers.remove(observer)


def keep_alive_server_class() -> type:
    """`ThreadedMotoServer` whose connections stay open between requests.

    Werkzeug's server answers every request with `Connection: close`, because http.server cannot
    skip a request body the application left unread. So each AWS call of every Lambda worker (and
    of the Step Functions engine) paid a new TCP connection and a new server thread: a fifth of a
    worker's time per DynamoDB write. Here each request's body is read to its end after the
    answer (a chunked body, which cannot be, still closes the connection), and the connection is
    kept, as a real AWS endpoint keeps it.
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server
    from werkzeug.wsgi import LimitedStream

    class KeepAliveRequestHandler(MotoRequestHandler):
        disable_nagle_algorithm = True  # head and body are separate writes; no 40 ms delayed-ACK stall
        _body: LimitedStream | None = None
        _environ: dict[str, Any] | None = None

        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            self._environ = environ
            if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
                self._body = None
            else:
                # The application reads the body through a stream that stops at its end; werkzeug's
                # own drain after the answer (which would read the next request) sees an empty rfile.
                self._body = LimitedStream(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = self._body
                self.rfile = io.BytesIO()
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "connection" and value.lower() == "close" and self._body is not None:
                return  # the body is drained in run_wsgi: the next request line is where it belongs
            super().send_header(keyword, value)

        def run_wsgi(self) -> None:
            connection_rfile, self._body = self.rfile, None
            try:
                super().run_wsgi()
            finally:
                self.rfile = connection_rfile
            environ, self._environ = self._environ, None
            if environ is not None:
                for observer in _observers:  # after the answer: the change is in moto's state now
                    observer(environ)
            body, self._body = self._body, None
            if body is None:
                self.close_connection = True
                return
            try:
                body.exhaust()
            except OSError:
                self.close_connection = True

    class KeepAliveMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = answering_preflights(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=KeepAliveRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return KeepAliveMotoServer


_PREFLIGHT_TARGET_HEADER = "x-amz-target"


def answering_preflights(app: Callable[..., Any]) -> Callable[..., Any]:
    """A WSGI app that answers a browser's CORS preflight of an `X-Amz-Target` call itself.

    A page on another origin (the web console's sign-in: amazon-cognito-identity-js's InitiateAuth)
    first sends `OPTIONS /` with neither a signature nor the target, only the names of the headers
    it will send. moto cannot tell the service from that, so it hands the preflight to its default,
    S3, as ListBuckets, which the embedded AWS's IAM check refuses to an anonymous caller (403):
    the browser then never sends the call (the console's "SignInFailed: Network error"). AWS
    endpoints answer such a preflight without authenticating it, and so does this. A preflight
    that does not announce a target (S3's, which follows a bucket's CORS rules) goes to moto.
    """

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        requested = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", ""))
        if (
            environ.get("REQUEST_METHOD") != "OPTIONS"
            or not environ.get("HTTP_ORIGIN")
            or not environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
            or _PREFLIGHT_TARGET_HEADER not in (name.strip().lower() for name in requested.split(","))
        ):
            return app(environ, start_response)
        start_response(
            "200 OK",
            [
                ("Access-Control-Allow-Origin", str(environ["HTTP_ORIGIN"])),
                ("Access-Control-Allow-Methods", str(environ["HTTP_ACCESS_CONTROL_REQUEST_METHOD"])),
                ("Access-Control-Allow-Headers", requested),
                ("Vary", "Origin"),
                ("Content-Length", "0"),
            ],
        )
        return [b""]

    return wsgi


# -- per-request costs that do not change -----------------------------------------------------------


def list_moto_modules_once() -> None:
    """moto's server finds the backend of every request by listing its own package folder on disk
    (~200 `isdir` calls) while holding the dispatcher's one lock; the list never changes. Idempotent."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_aiwf_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    list_of_moto_modules._aiwf_cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]


def routers_built_once() -> None:
    """moto builds a service's request router on first use, with no lock: concurrent first requests
    race on the half-built router (a werkzeug traceback under load). One at a time. Idempotent."""
    from moto.core.routing import ServiceOperationRouter

    original = ServiceOperationRouter._get_router
    if getattr(original, "_aiwf_locked", False):
        return
    lock = threading.Lock()

    def _get_router(self: Any, protocol: str) -> Any:
        routers = self._routers
        if protocol in routers:
            return routers[protocol]
        with lock:
            return original(self, protocol)

    _get_router._aiwf_locked = True  # type: ignore[attr-defined]
    ServiceOperationRouter._get_router = _get_router  # type: ignore[method-assign]
