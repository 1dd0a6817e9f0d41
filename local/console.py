"""The web console on the local stack: `console/` as static files at `/console/`, its vendored
libraries from `node_modules`, and `/console/config.json` (the stack's own URLs, API key and user pool).

The console is a static single-page app (`console/`, ES modules, no build step). On the local stack
it reads `config.json` and needs no set-up; anywhere else (a deployed stage) that file is absent
and the page asks for the stage's outputs, kept only in the browser session. Only the files named
in `VENDORED` are served from `node_modules`: the page loads nothing from the internet.

`python -m local.console` serves the console alone (no stack, no `config.json`), for a deployed
stage: the page then asks for the stage's `graphqlUrl`, `realtimeUrl` and `apiKey`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

PROJECT_DIR = Path(__file__).resolve().parent.parent
PATH = "/console"
# name under /console/vendor/ -> file under node_modules (pinned in package.json / package-lock.json)
VENDORED = {
    "dagre.esm.js": "@dagrejs/dagre/dist/dagre.esm.js",
    "dagre.esm.js.map": "@dagrejs/dagre/dist/dagre.esm.js.map",
    # the sign-in (USER_SRP_AUTH) to the stage's user pool; a UMD bundle that sets AmazonCognitoIdentity
    "amazon-cognito-identity.min.js": "amazon-cognito-identity-js/dist/amazon-cognito-identity.min.js",
}
# what the page needs from the stack outputs (the contract's names); the user pool for the sign-in,
# whose Cognito is the embedded AWS at awsEndpointUrl on the local stack
CONFIG_KEYS = (
    "graphqlUrl",
    "realtimeUrl",
    "apiKey",
    "taskApiUrl",
    "stage",
    "userPoolId",
    "userPoolClientId",
    "awsEndpointUrl",
)


def console_url(base_url: str) -> str:
    """The local-only `consoleUrl` output."""
    return f"{base_url}{PATH}/"


def routes(project_dir: Path, outputs: Callable[[], dict[str, Any]]) -> list[BaseRoute]:
    """The console's routes, served before the REST API catch-all. `outputs` is read per request
    because the stack's outputs exist only once the program has run."""
    app_dir = project_dir / "console"
    modules = project_dir / "node_modules"

    async def config(_request: Request) -> Response:
        values = outputs()
        body = {key: values[key] for key in CONFIG_KEYS if key in values}
        if not body:  # served alone: the page asks the user for a stage's outputs
            return JSONResponse({"error": "no local stack"}, status_code=404, headers={"cache-control": "no-store"})
        return JSONResponse(body, headers={"cache-control": "no-store"})

    async def vendor(request: Request) -> Response:
        relative = VENDORED.get(request.path_params["name"])
        if relative is None or not (modules / relative).is_file():
            raise HTTPException(404, f"not vendored (run make install): {request.path_params['name']}")
        media = "text/javascript" if relative.endswith(".js") else "application/json"
        return FileResponse(modules / relative, media_type=media)

    async def to_app(_request: Request) -> Response:
        return RedirectResponse(f"{PATH}/")

    return [
        Route(PATH, to_app),
        Route(f"{PATH}/config.json", config),
        Route(f"{PATH}/vendor/{{name}}", vendor),
        Mount(PATH, app=StaticFiles(directory=app_dir, html=True, check_dir=False)),
    ]


def main(argv: list[str] | None = None) -> None:
    """Serve the console alone on loopback, to open it against a deployed stage."""
    import uvicorn
    from starlette.applications import Starlette

    parser = argparse.ArgumentParser(prog="python -m local.console", description=main.__doc__)
    parser.add_argument("--port", type=int, default=4100, help="HTTP port on 127.0.0.1 (default 4100)")
    args = parser.parse_args(argv)
    app = Starlette(routes=routes(PROJECT_DIR, dict))
    print(f"Web console: http://127.0.0.1:{args.port}{PATH}/ (enter the stage's outputs in Settings) - Ctrl-C to stop")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
