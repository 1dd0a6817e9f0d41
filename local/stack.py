"""The local stack: the real Pulumi program on an embedded AWS, its APIs served on loopback.

Start-up order matters and is why this is one object:
1. bind the HTTP socket first, so the Stage mock can hand out the real URL (port 0 = any free port);
2. start (or join: it is shared by every stack of the process, see ``local.embedded``) moto, whose
   Lambda invocations go to warm worker processes (``local.lambda_runtime``);
3. run ``__main__.py`` under Pulumi's mock runtime (``local.pulumi_mocks``) with the local mocks
   (``local.mocks``), which create every resource in moto, and resolve the stack outputs;
4. serve the REST API (and, later, GraphQL) with uvicorn, then write ``outputs.json``.

Tests use it in-process::

    with LocalStack(stage="dev", port=0) as stack:
        requests.get(stack.outputs["taskApiUrl"] + "/tasks", headers={"x-api-key": stack.outputs["apiKey"]})
"""

from __future__ import annotations

import contextlib
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

from local import embedded, pulumi_mocks
from local.apigw import INTEGRATION_TIMEOUT_SECONDS, RestApiGateway
from local.lambda_runtime import LambdaRuntime
from local.mocks import LocalAwsMocks
from local.moto_server import MotoServer
from local.pulumi_mocks import config_value
from local.registry import ACCOUNT_ID, Registry

log = logging.getLogger("local")

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 4000
HTTP_SHUTDOWN_GRACE_SECONDS = 1.0  # for requests in flight to finish on their own when the stack stops
HTTP_SHUTDOWN_SECONDS = 5.0  # for them to finish once the workers they wait on have ended
_PROGRAM_LOCK = threading.Lock()  # Pulumi's runtime state is process-global: one program run at a time


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
    ) -> None:
        self.stage = stage or os.environ.get("STAGE") or "dev"
        self.port = int(os.environ.get("PORT", DEFAULT_PORT)) if port is None else port
        self.host = host
        self.project_dir = Path(project_dir or PROJECT_DIR).resolve()
        self.program = self.project_dir / program
        self.outputs_path = Path(outputs_path) if outputs_path else None
        self.max_workers = max_workers_per_function
        self.outputs: dict[str, Any] = {}
        self.registry = Registry()
        self.region = "us-east-1"
        self.aws: embedded.EmbeddedAws | None = None
        self.mocks: LocalAwsMocks | None = None
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._frozen = False
        self.appsync: Any = None  # local.appsync_server.LocalAppSync once serving a GraphQL API

    # -- public API ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

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
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving and leave the embedded AWS (the last stack of the process stops it). Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            # uvicorn waits for requests in flight; one still waiting on a Lambda after this grace
            # ends when the embedded AWS below ends the workers (for the last stack of the process)
            self._thread.join(timeout=HTTP_SHUTDOWN_GRACE_SECONDS)
        if self._frozen:
            gc.unfreeze()  # what this stack leaves behind can be collected again
            self._frozen = False
        if self.aws is not None:
            embedded.release(self.aws)
            self.aws = None
        if self._thread is not None:
            self._thread.join(timeout=HTTP_SHUTDOWN_SECONDS)
            if self._thread.is_alive():
                log.warning("the HTTP server still had requests in flight; left to end with the process")
            self._thread = None
        self._server = None
        if self.appsync is not None:
            self.appsync.close()
            self.appsync = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

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
        started = time.monotonic()
        if self.outputs_path is not None:
            self.outputs_path.unlink(missing_ok=True)  # never let a reader take a stale file for a ready stack
        project, config = load_config(self.project_dir, self.stage)
        _without_cloud_models(project, config)
        self.region = config.get("aws:region", "us-east-1")
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so, and without it
        # every small write on a kept-alive connection or a WebSocket waits ~40 ms (Nagle + delayed ACK).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.host, self.port))
        self.port = self._socket.getsockname()[1]
        _local_egress(project, config, self.host, self.port)
        log.info("stage %s: config from Pulumi.%s.yaml; serving on %s", self.stage, self.stage, self.base_url)

        self.aws = embedded.acquire(self.region, self.max_workers)

        log.info("running %s under Pulumi mocks (project %s, stack %s)", self.program.name, project, self.stage)
        self.mocks = LocalAwsMocks(self.aws.url, self.region, self.base_url, self.registry)
        with _PROGRAM_LOCK:
            outputs = run_program(self.program, project, self.stage, config, self.mocks)
        self.outputs = dict(outputs)
        self.outputs.setdefault("stage", self.stage)
        log.info("%d resources created", len(self.registry.resources))

        self._serve()
        # What start-up built lives as long as the stack (moto's backends, the program, the schema:
        # ~0.5 M objects). Frozen out of the cyclic GC, a full collection no longer walks it all while
        # a request waits: ~0.5 ms off a published change's trip (bench/fanout.py, p50 and p99).
        gc.collect()
        gc.freeze()
        self._frozen = True
        if self.outputs_path is not None:
            self.outputs_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.outputs_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.outputs, indent=2, sort_keys=True, default=str) + "\n")
            tmp.replace(self.outputs_path)  # readers never see a half-written file
            log.info("outputs written to %s", self.outputs_path)
        log.info("ready in %.1f s", time.monotonic() - started)

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
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(
                read_timeout=INTEGRATION_TIMEOUT_SECONDS, retries={"max_attempts": 0}, max_pool_connections=32
            ),
        )
        rest = RestApiGateway(self.registry, self._invoke_lambda, self.region, ACCOUNT_ID)
        app = Starlette(routes=[*self.extra_routes(), Mount("/", app=rest)])
        # No permessage-deflate: the real-time frames are small JSON documents, and compressing each
        # one (then inflating it in every client) costs more CPU per subscriber than it saves on loopback.
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", ws_per_message_deflate=False
        )
        self._server = uvicorn.Server(config)
        assert self._socket is not None
        sock = self._socket
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="local-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local HTTP server did not start")
            time.sleep(0.01)
