"""The embedded AWS's server: moto on loopback in this process, with its Step Functions engine on.

- starts a `ThreadedMotoServer` on loopback (port 0 = a free port), with HTTP keep-alive
  (`local.moto_glue.server`; werkzeug closes every connection);
- sets ``MOTO_PORT`` to that port: moto's Step Functions engine builds its own boto3 clients for
  ``http://localhost:$MOTO_PORT`` (default 5000), so without it ``lambda:invoke`` tasks go nowhere;
- turns on the engine with ``POST /moto-api/config`` ``{"stepfunctions": {"execute_state_machine": true}}``;
- applies the moto patches (`local.moto_glue.install`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import requests

from local import moto_glue
from local.iam_enforcement import LOCAL_CREDENTIALS
from local.moto_glue.server import keep_alive_server_class

log = logging.getLogger("local.moto")


def fake_aws_environment(region: str) -> dict[str, str]:
    """Credentials and region every boto3 client of the local stack process needs (never real ones):
    the local admin's key (`local.iam_enforcement`), without a session token (which would make the
    key a role session's)."""
    return {**LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}


@dataclass
class MotoServer:
    """A running embedded AWS: its base URL and a way to stop it."""

    server: Any
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.stop()


def start_server(port: int = 0, region: str = "us-east-1") -> MotoServer:
    """Start moto on 127.0.0.1, point the Step Functions engine at it and turn the engine on.

    Also sets fake credentials and the region in ``os.environ`` so boto3 clients made in this
    process, including the engine's, never pick up real AWS keys or profiles.
    """
    for key, value in fake_aws_environment(region).items():
        os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call is noise
    server = keep_alive_server_class()(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _host, bound_port = server.get_host_and_port()
    os.environ["MOTO_PORT"] = str(bound_port)  # read by moto.settings.moto_server_port() at call time
    moto = MotoServer(server, "127.0.0.1", bound_port)
    response = requests.post(
        f"{moto.url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
    )
    response.raise_for_status()
    moto_glue.install()
    log.debug("moto %s serving on %s (Step Functions engine on)", moto_glue.MOTO_VERSION, moto.url)
    return moto


def reset(moto: MotoServer) -> None:
    """Forget every resource (moto's state is process-global, shared by all servers in a process)."""
    requests.post(f"{moto.url}/moto-api/reset", timeout=10).raise_for_status()
