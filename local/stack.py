"""The local stack: the real Pulumi program on an embedded AWS, its APIs served on loopback.

Start-up order matters and is why this is one object:
1. bind the HTTP socket first, so the Stage mock can hand out the real URL (port 0 = any free port);
2. start (or join: it is shared by every stack of the process, see ``local.embedded``) moto, whose
   Lambda invocations go to warm worker processes (``local.lambda_runtime``);
3. run ``__main__.py`` under Pulumi's mock runtime (``local.pulumi_mocks``) with the local mocks
   (``local.mocks``), which create every resource in moto, and resolve the stack outputs;
4. serve the REST API and GraphQL with uvicorn, on the plain port and on its TLS twin (``local.tls``),
   then write ``outputs.json``.

Tests use it in-process::

    with LocalStack(stage="dev", port=0) as stack:
        requests.get(stack.outputs["taskApiUrl"] + "/tasks", headers={"x-api-key": stack.outputs["apiKey"]})
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import uvicorn
import yaml
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from local import console, embedded, pulumi_mocks, restart, tls
from local.apigw import INTEGRATION_TIMEOUT_SECONDS, RestApiGateway
from local.iam_enforcement import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from local.lambda_runtime import LambdaRuntime
from local.mocks import LocalAwsMocks
from local.moto_server import MotoServer
from local.persistence import LocalState
from local.pulumi_mocks import config_value
from local.registry import ACCOUNT_ID, Registry

log = logging.getLogger("local")

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 4000
HTTP_SHUTDOWN_GRACE_SECONDS = 1.0  # for requests in flight to finish on their own when the stack stops
HTTP_SHUTDOWN_SECONDS = 5.0  # for them to finish once the workers they wait on have ended
_PROGRAM_LOCK = threading.Lock()  # Pulumi's runtime state is process-global: one program run at a time
# What a client of the embedded AWS signs with (the AWS CLI, boto3; the `awsCredentials` output).
# The local admin's key (local.iam_enforcement owns it): what the stack's own clients sign with,
# and the `awsCredentials` output for the AWS CLI and boto3.
LOCAL_CREDENTIALS = {"accessKeyId": LOCAL_ACCESS_KEY_ID, "secretAccessKey": LOCAL_SECRET_ACCESS_KEY}


# Resources whose provisioning runs a Lambda function (a worker starts): shown apart in the "ready" line.
DEPLOY_TIME_INVOCATIONS = frozenset({"aws:lambda/invocation:Invocation"})


class PortInUse(Exception):
    """A port of the stack is taken (most likely by another `make dev`); the message says what to do.
    `setting`: the variable that picks that port (`PORT`, or `TLS_PORT` for the TLS twin)."""

    def __init__(self, port: int, setting: str = "PORT") -> None:
        what = "port" if setting == "PORT" else "TLS port"
        super().__init__(f"{what} {port} is in use (another make dev?): {setting}={port + 10} make dev")
        self.port = port


def bind_listening_socket(host: str, port: int, setting: str = "PORT") -> socket.socket:
    """A listening socket of the stack, bound before anything else starts (so a busy port is one
    line and touches no file). proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say
    so, and without it every small write on a kept-alive connection or a WebSocket waits ~40 ms
    (Nagle + delayed ACK)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(port, setting) from None
        raise
    return sock


def load_config(project_dir: Path, stage: str) -> tuple[str, dict[str, str]]:
    """Read the project name and the merged config of `Pulumi.yaml` (defaults) and `Pulumi.<stage>.yaml`."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    name = project["name"]
    config: dict[str, str] = {}

    def key(k: str) -> str:
        return k if ":" in k else f"{name}:{k}"

    for k, spec in (project.get("config") or {}).items():
        if isinstance(spec, dict) and ("value" in spec or "default" in spec):
            value = config_value(spec.get("value", spec.get("default")))
        else:
            value = config_value(spec)
        if value is not None:
            config[key(k)] = value
    stage_file = project_dir / f"Pulumi.{stage}.yaml"
    if not stage_file.exists():
        raise FileNotFoundError(f"no stage config {stage_file.name} in {project_dir}")
    for k, v in ((yaml.safe_load(stage_file.read_text()) or {}).get("config") or {}).items():
        if isinstance(v, dict) and "secure" in v:
            log.warning("config %s is encrypted; the local stack cannot decrypt it and leaves it unset", k)
            continue
        value = config_value(v)
        if value is not None:
            config[key(k)] = value
    return name, config


def _without_cloud_models(project: str, config: dict[str, str]) -> None:
    """Bedrock is not emulated: the local stack answers llm steps with the deterministic local model,
    unless the stage points at an OpenAI-compatible endpoint (a model server on this machine)."""
    key = f"{project}:llmProvider"
    if config.get(key, "bedrock") == "bedrock":
        config[key] = "local"
        log.info(
            "llm steps use the deterministic local model (Bedrock is not emulated; set llmProvider: "
            "openai and llmEndpoint in the stage config to use a local model server)"
        )


def _local_egress(project: str, config: dict[str, str], own_host: str, own_port: int) -> None:
    """The examples and tests talk to stub servers on this machine, so the local stack allows loopback
    whatever the stage says, but never its own API port: it joins the stage's `egress.denyHosts`.
    (The embedded AWS is refused in every function already: it is their AWS_ENDPOINT_URL.)"""
    key = f"{project}:egress"
    try:
        egress = json.loads(config.get(key) or "{}")
    except ValueError:
        return  # not JSON: left for the program's config check to report
    if not isinstance(egress, dict):
        return
    own = [own_host]
    if own_host in ("0.0.0.0", "::", ""):
        own = ["127.0.0.1"]  # every loopback address at this port (and other local ones are private)
    else:
        with contextlib.suppress(OSError):  # a name: refuse its addresses too
            own += [info[4][0] for info in socket.getaddrinfo(own_host, own_port, type=socket.SOCK_STREAM)]
    entries = [f"[{host}]:{own_port}" if ":" in host else f"{host}:{own_port}" for host in dict.fromkeys(own)]
    deny = [*(egress.get("denyHosts") or []), *entries]
    config[key] = json.dumps({**egress, "allowLoopback": True, "denyHosts": deny}, separators=(",", ":"))
    log.info("flows may reach loopback, except this stack's own port %d and the embedded AWS", own_port)


def run_program(
    program: Path, project: str, stage: str, config: dict[str, str], mocks: LocalAwsMocks
) -> dict[str, Any]:
    """Run a Pulumi program under `mocks` and return its stack outputs as plain values (secrets too)."""
    outputs = pulumi_mocks.run_program(program, project, stage, config, mocks, logger=logging.getLogger("local.pulumi"))
    return pulumi_mocks.resolve(outputs)[0] or {}


class LocalStack:
    """Embedded AWS + warm Lambda workers + the program's resources + HTTP APIs, as one context manager."""

    def __init__(
        self,
        stage: str | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        project_dir: str | Path | None = None,
        program: str = "__main__.py",
        outputs_path: str | Path | None = None,
        max_workers_per_function: int = 4,
        tls_port: int | None = None,
        state_dir: str | Path | None = None,
        fresh: bool = False,
    ) -> None:
        """`state_dir`: where the stack's data is kept across restarts (`local.persistence`; None:
        in memory only, as tests use it); `fresh`: start from an empty `state_dir`."""
        self.stage = stage or os.environ.get("STAGE") or "dev"
        self.port = int(os.environ.get("PORT", DEFAULT_PORT)) if port is None else port
        if tls_port is None and port is None and os.environ.get("TLS_PORT"):
            tls_port = int(os.environ["TLS_PORT"])
        self.tls_port = tls.twin_port(self.port) if tls_port is None else tls_port
        self.host = host
        self.project_dir = Path(project_dir or PROJECT_DIR).resolve()
        self.program = self.project_dir / program
        self.outputs_path = Path(outputs_path) if outputs_path else None
        self.max_workers = max_workers_per_function
        self.outputs: dict[str, Any] = {}
        self.state_dir = Path(state_dir) if state_dir else None
        self.fresh = fresh
        self.state: LocalState | None = None
        self.timings: dict[str, float] = {}  # start-up phase -> seconds (the "ready in" line, bench/startup.py)
        self._wrote_outputs = False
        self.serving = False  # the outputs are written: start-up is over
        self.registry = Registry()
        self.region = "us-east-1"
        self.aws: embedded.EmbeddedAws | None = None
        self.mocks: LocalAwsMocks | None = None
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._tls_socket: socket.socket | None = None
        self._tls_server: uvicorn.Server | None = None
        self._tls_thread: threading.Thread | None = None
        self._tls_files: tls.TlsFiles | None = None
        self._frozen = False
        self.appsync: Any = None  # local.appsync_server.LocalAppSync once serving a GraphQL API

    # -- public API ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def tls_base_url(self) -> str:
        return f"https://{self.host}:{self.tls_port}"

    @property
    def endpoint_url(self) -> str:
        """The embedded AWS endpoint (what `AWS_ENDPOINT_URL` is set to in Lambda workers)."""
        assert self.aws is not None, "stack not started"
        return self.aws.url

    @property
    def moto(self) -> MotoServer | None:
        return self.aws.moto if self.aws else None

    @property
    def runtime(self) -> LambdaRuntime | None:
        """The Lambda worker runtime (shared by the stacks of this process)."""
        return self.aws.runtime if self.aws else None

    def client(self, service: str) -> Any:
        """A boto3 client for the embedded AWS (fake credentials, the stack's region)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=LOCAL_CREDENTIALS["accessKeyId"],
            aws_secret_access_key=LOCAL_CREDENTIALS["secretAccessKey"],
        )

    def start(self) -> LocalStack:
        # No cyclic GC while starting: start-up builds ~0.5 M long-lived objects, and the automatic
        # collections that growth sets off walk them again and again (about a second of start-up on
        # the 2-core machine, bench/startup.py). One collection at the end, then frozen (_start).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        finally:
            if collecting:
                gc.enable()
        return self

    def stop(self) -> None:
        """Stop serving and leave the embedded AWS (the last stack of the process stops it). Idempotent."""
        servers = [(self._server, self._thread), (self._tls_server, self._tls_thread)]
        for server, _ in servers:
            if server is not None:
                server.should_exit = True
        grace_ends = time.monotonic() + HTTP_SHUTDOWN_GRACE_SECONDS
        for _, thread in servers:
            if thread is not None:
                # uvicorn waits for requests in flight; one still waiting on a Lambda after this grace
                # ends when the embedded AWS below ends the workers (for the last stack of the process)
                thread.join(timeout=max(0.0, grace_ends - time.monotonic()))
        if self.state is not None:
            self.state.close(save=True)  # before the embedded AWS forgets the tables
            self.state = None
        if self._wrote_outputs and self.outputs_path is not None:
            self.outputs_path.unlink(missing_ok=True)  # a stopped stack leaves no outputs to mistake for it
            self._wrote_outputs = False
        if self._frozen:
            gc.unfreeze()  # what this stack leaves behind can be collected again
            self._frozen = False
        if self.aws is not None:
            embedded.release(self.aws)
            self.aws = None
        for _, thread in servers:
            if thread is not None:
                thread.join(timeout=HTTP_SHUTDOWN_SECONDS)
                if thread.is_alive():
                    log.warning("the HTTP server still had requests in flight; left to end with the process")
        self._thread = self._tls_thread = None
        self._server = self._tls_server = None
        if self.appsync is not None:
            self.appsync.close()
            self.appsync = None
        for sock in (self._socket, self._tls_socket):
            if sock is not None:
                sock.close()
        self._socket = self._tls_socket = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def extra_routes(self) -> list[BaseRoute]:
        """Routes served before the REST API catch-all: the program's GraphQL API, when it declares one."""
        if not self.registry.graphql_apis:
            return []
        from local.appsync_server import LocalAppSync

        self.appsync = LocalAppSync(self.registry, self._invoke_lambda, self.aws.iam if self.aws else None)
        return self.appsync.routes()

    # -- start-up --------------------------------------------------------------------------------

    def _start(self) -> None:
        started = phase = time.monotonic()
        project, config = load_config(self.project_dir, self.stage)
        _without_cloud_models(project, config)
        self.region = config.get("aws:region", "us-east-1")
        # The port first: a stack already serving there keeps its files (outputs, state) untouched.
        self._socket = bind_listening_socket(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        self._tls_socket = bind_listening_socket(self.host, self.tls_port, "TLS_PORT")
        self.tls_port = self._tls_socket.getsockname()[1]
        if self.state_dir is not None:  # the state next: a stack of the same stage on another port keeps it
            self.state = LocalState(self.state_dir, self.region, fresh=self.fresh)
        if self.outputs_path is not None:
            self.outputs_path.unlink(missing_ok=True)  # never let a reader take a stale file for a ready stack
        _local_egress(project, config, self.host, self.port)
        _local_egress(project, config, self.host, self.tls_port)
        log.info("stage %s: config from Pulumi.%s.yaml; serving on %s", self.stage, self.stage, self.base_url)

        self.aws = embedded.acquire(self.region, self.max_workers)
        self._tls_files = tls.ensure_certificates(tls.tls_directory(self.project_dir), tls.hosts_for(self.host))
        phase = self._timed("embedded AWS", phase)

        log.info("running %s under Pulumi mocks (project %s, stack %s)", self.program.name, project, self.stage)
        self.mocks = LocalAwsMocks(
            self.aws.url,
            self.region,
            self.base_url,
            self.registry,
            names=self.state.names if self.state else None,
            on_created=self.state.created if self.state else None,
        )
        with _PROGRAM_LOCK:
            outputs = run_program(self.program, project, self.stage, config, self.mocks)
        self.outputs = {**outputs, **self._local_outputs()}
        self.outputs.setdefault("stage", self.stage)
        assert self._tls_files is not None
        self.outputs["tls"] = tls.twin_outputs(self.outputs, self.tls_port, self._tls_files.ca)
        self.outputs["consoleUrl"] = console.console_url(self.base_url)  # local-only, like awsEndpointUrl
        log.info("%d resources created", len(self.registry.resources))
        program = time.monotonic() - phase
        provisioning = self.mocks.busy_seconds()
        workers = self.mocks.busy_seconds(DEPLOY_TIME_INVOCATIONS)
        self.timings["program under mocks"] = program - provisioning
        self.timings["provisioning"] = provisioning - workers
        self.timings["Lambda workers"] = workers  # the program's deploy-time invocations (flow registration)
        phase = time.monotonic()

        self._serve()
        phase = self._timed("servers", phase)
        if self.outputs_path is not None:
            self.outputs_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.outputs_path.with_suffix(".tmp")
            # The owner's only: the outputs carry the API key and the local admin credentials.
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write(json.dumps(self.outputs, indent=2, sort_keys=True, default=str) + "\n")
            tmp.replace(self.outputs_path)  # readers never see a half-written file
            self._wrote_outputs = True
            log.info("outputs written to %s", self.outputs_path)
        self.serving = True
        if self.state is not None:
            self.state.start()
            self.restarting = restart.restart_unfinished_tasks(self.state, self.registry, self._invoke_lambda)
        self._timed("outputs", phase)
        total = time.monotonic() - started
        self.timings["total"] = total
        log.info(
            "ready in %.1f s: %s",
            total,
            ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items() if name != "total"),
        )
        # What start-up built lives as long as the stack (moto's backends, the program, the schema:
        # ~0.5 M objects). Frozen out of the cyclic GC, a full collection no longer walks it all while
        # a request waits: ~0.5 ms off a published change's trip (bench/fanout.py, p50 and p99).
        # Once serving (the outputs are written): the collection is not start-up time a user waits for.
        gc.collect()
        gc.freeze()
        self._frozen = True

    def _timed(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.timings[name] = now - since
        return now

    def _local_outputs(self) -> dict[str, Any]:
        """Outputs only the local stack has: where the embedded AWS is, and what to sign with."""
        return {
            "awsEndpointUrl": self.endpoint_url,
            "awsCredentials": {**LOCAL_CREDENTIALS, "region": self.region},
        }

    def _invoke_lambda(self, function_arn: str, event: str) -> tuple[bytes, str | None]:
        """How API Gateway calls a function: the Lambda Invoke API of the embedded AWS."""
        client = self._lambda_client
        try:
            response = client.invoke(FunctionName=function_arn, Payload=event.encode())
        except ReadTimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
        return response["Payload"].read(), response.get("FunctionError")

    def _serve(self) -> None:
        self._lambda_client = boto3.client(
            "lambda",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=LOCAL_CREDENTIALS["accessKeyId"],
            aws_secret_access_key=LOCAL_CREDENTIALS["secretAccessKey"],
            config=Config(
                read_timeout=INTEGRATION_TIMEOUT_SECONDS, retries={"max_attempts": 0}, max_pool_connections=32
            ),
        )
        rest = RestApiGateway(
            self.registry,
            self._invoke_lambda,
            self.region,
            ACCOUNT_ID,
            principals=self.aws.iam if self.aws else None,
            credentials={LOCAL_ACCESS_KEY_ID: LOCAL_SECRET_ACCESS_KEY},
        )
        console_routes = console.routes(self.project_dir, lambda: self.outputs)
        app = Starlette(routes=[*self.extra_routes(), *console_routes, Mount("/", app=rest)])
        assert self._socket is not None and self._tls_socket is not None and self._tls_files is not None
        self._server, self._thread = _start_server(app, self._socket, "local-http")
        # The TLS twin: the same app (routes, hub, API keys) behind TLS, in a thread and loop of its
        # own; the real-time hub sends each subscriber's frames on that subscriber's own loop.
        certificate, key = str(self._tls_files.certificate), str(self._tls_files.key)
        self._tls_server, self._tls_thread = _start_server(
            app, self._tls_socket, "local-https", ssl_certfile=certificate, ssl_keyfile=key
        )


def _start_server(app: Any, sock: socket.socket, name: str, **ssl: str) -> tuple[uvicorn.Server, threading.Thread]:
    """Serve `app` on the bound `sock` (with TLS when `ssl` names a certificate and key) in a thread;
    returns once it accepts connections."""
    # No permessage-deflate: the real-time frames are small JSON documents, and compressing each
    # one (then inflating it in every client) costs more CPU per subscriber than it saves on loopback.
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", ws_per_message_deflate=False, **ssl
    )
    server = tls.TlsServer(config) if ssl else uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the local {name} server did not start")
        time.sleep(0.01)
    return server, thread
