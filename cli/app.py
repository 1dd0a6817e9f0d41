"""The `aiwf` commands. Each one makes one SDK call (aiwf_sdk.Client) and prints the answer.

Exit codes are in cli/errors.py (mapped from the SDK's exceptions); `--json` prints the API's JSON for scripts.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from typer._click.exceptions import ClickException  # typer 0.29 ships its own click

from aiwf_sdk import AiwfError, Client, SessionAuth, TaskState, UserPool, session
from aiwf_sdk import outputs as stack_outputs
from aiwf_sdk.models import Page
from cli import render
from cli.errors import CliError, ExitCode

app = typer.Typer(
    name="aiwf",
    help="Run AI workflows: register flows, start, inspect and resume tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
flows_app = typer.Typer(help="Register, read, list and retire flows.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")


class Context:
    """The stack a command talks to, and as whom: a signed-in user (`aiwf login`) when its session
    is kept for this stack, else the client's own credentials (AWS credentials, the API key)."""

    def __init__(self, stack: str | None, outputs: Path | None, as_json: bool) -> None:
        self.stack = stack
        self.outputs_file = outputs
        self.as_json = as_json
        self._outputs: dict[str, Any] | None = None
        self._client: Client | None = None
        self._operator_client: Client | None = None

    @property
    def outputs(self) -> dict[str, Any]:
        if self._outputs is None:
            if self.stack:
                self._outputs = stack_outputs.from_stack(self.stack)
            else:
                self._outputs = stack_outputs.from_file(self.outputs_file or stack_outputs.LOCAL_OUTPUTS)
        return self._outputs

    @property
    def session_file(self) -> Path:
        return session.session_path(outputs_file=self.outputs_file or stack_outputs.LOCAL_OUTPUTS, stack=self.stack)

    def user_pool(self) -> UserPool:
        return UserPool.from_outputs(self.outputs)

    def session_auth(self) -> SessionAuth | None:
        """The kept session of this stack's user pool, if any (one of another pool is ignored)."""
        if not self.outputs.get("userPoolId"):
            return None
        pool = self.user_pool()
        kept = session.load(self.session_file, pool)
        return SessionAuth(kept, pool, self.session_file) if kept is not None else None

    @property
    def client(self) -> Client:
        """As the signed-in user when there is one."""
        if self._client is None:
            self._client = Client.from_stack_outputs(self.outputs, auth=self.session_auth())
        return self._client

    @property
    def operator_client(self) -> Client:
        """Never the user's session: flow registration is for operators only, whoever is signed in."""
        if self._operator_client is None:
            self._operator_client = Client.from_stack_outputs(self.outputs)
        return self._operator_client


@app.callback()
def _options(
    ctx: typer.Context,
    stack: Annotated[
        str | None, typer.Option("--stack", "-s", help="A deployed stage (reads `pulumi stack output`).")
    ] = None,
    outputs: Annotated[
        Path | None, typer.Option(help="Stack outputs file (default .local/outputs.json from `make dev`).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON, for scripts.")] = False,
) -> None:
    ctx.obj = Context(stack, outputs, as_json)


def _json_argument(text: str, what: str) -> Any:
    """A JSON value given inline, or `@path` to a JSON/YAML file (read as YAML: JSON is YAML too)."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            return yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise CliError(f"{what}: file {path} does not exist", ExitCode.BAD_REQUEST) from None
        except yaml.YAMLError as exc:
            raise CliError(f"{what} {path} is not valid YAML: {exc}", ExitCode.BAD_REQUEST) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}", ExitCode.BAD_REQUEST) from None


def _show_state(ctx: Context, state: TaskState) -> None:
    if ctx.as_json:
        render.print_json(state.to_json())
    else:
        render.state_panel(state.to_json())


def _progress(ctx: Context) -> Callable[[TaskState], None] | None:
    """While a command follows a task: each status / step change on stderr (not with --json)."""
    if ctx.as_json:
        return None

    def show(state: TaskState) -> None:
        render.err.print(f"{render.status(state.status)} {state.current_step or ''}")
        if state.status == "WAITING":
            render.err.print("waiting for an external event: resume it with `aiwf resume`")

    return show


# -- flows ------------------------------------------------------------------------------------
@flows_app.command("put")
def flows_put(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Flow document, YAML or JSON.")]) -> None:
    """Register a new version of the flow in FILE (its `id` names the flow)."""
    document = _json_argument(f"@{file}", "the flow file")
    if not isinstance(document, dict) or "id" not in document:
        raise CliError(f"{file} is not a flow document with an `id`", ExitCode.BAD_REQUEST)
    deployed = ctx.obj.operator_client.flows.deploy(document)
    if ctx.obj.as_json:
        render.print_json(deployed.to_json())
    else:
        unchanged = "" if deployed.created else " (unchanged: the document is the same)"
        render.out.print(f"flow [bold]{deployed.flow_id}[/] version {deployed.version}{unchanged}")


@flows_app.command("get")
def flows_get(
    ctx: typer.Context,
    flow_id: Annotated[str, typer.Argument(help="The flow's id.")],
    version: Annotated[int | None, typer.Option(help="One version instead of the latest.")] = None,
) -> None:
    """Print a flow document (the latest version unless --version)."""
    flow = ctx.obj.client.flows.get(flow_id, version)
    if ctx.obj.as_json:
        render.print_json(flow.to_json())
    else:
        render.out.print(f"# {flow.flow_id} version {flow.version}, registered {flow.created_at}")
        render.out.print(yaml.safe_dump(flow.document, sort_keys=False).rstrip())


@flows_app.command("list")
def flows_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Flows per page.")] = 100,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow nextToken through every page.")] = False,
) -> None:
    """List registered flows by id: the latest version of each, and whether it is retired."""
    items, token = _pages(lambda token: ctx.obj.client.flows.page(limit, token), all_pages)
    if ctx.obj.as_json:
        render.print_json({"items": items, "nextToken": token})
        return
    render.flows_table(items, f"{len(items)} flow(s)")
    if token:
        render.err.print("more flows exist: use --all")


@flows_app.command("retire")
def flows_retire(ctx: typer.Context, flow_id: Annotated[str, typer.Argument(metavar="FLOW")]) -> None:
    """Retire FLOW: no new tasks (running ones finish on their version); `flows put` revives it."""
    retired = ctx.obj.operator_client.flows.retire(flow_id)
    if ctx.obj.as_json:
        render.print_json(retired.to_json())
    else:
        render.out.print(f"flow [bold]{retired.flow_id}[/] retired (latest version {retired.version})")


# -- signing in ------------------------------------------------------------------------------
@app.command()
def login(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="USER", help="The user's name in the stage's user pool.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (else a prompt asks).")
    ] = False,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="ADMIN_USER_PASSWORD_AUTH signed with AWS credentials (operators' scripts), not SRP."
        ),
    ] = False,
) -> None:
    """Sign in to the stage's user pool: later commands act as this user (its tenant's tasks only)."""
    pool = ctx.obj.user_pool()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"password for {username}", hide_input=True, err=True)
    if not password:
        raise CliError("no password given", ExitCode.BAD_REQUEST)
    signed_in = session.sign_in(pool, username, password, admin=admin)
    signed_in.save(ctx.obj.session_file)
    _show_session(ctx.obj, signed_in)


@app.command()
def logout(ctx: typer.Context) -> None:
    """Forget the signed-in user's session: later commands use the API key (or AWS credentials) again."""
    forgotten = session.forget(ctx.obj.session_file)
    if ctx.obj.as_json:
        render.print_json({"signedOut": forgotten})
    else:
        render.out.print("signed out" if forgotten else "nobody was signed in")


@app.command()
def whoami(ctx: typer.Context) -> None:
    """Who later commands act as: the signed-in user (and its tenant), or the stack's key."""
    auth = ctx.obj.session_auth()
    if auth is None:
        if ctx.obj.as_json:
            render.print_json({"caller": "key", "tenant": "default"})
        else:
            render.out.print("not signed in: commands use the API key (tenant default) or AWS credentials")
        return
    _show_session(ctx.obj, auth.session)


def _show_session(ctx: Context, signed_in: session.Session) -> None:
    if ctx.as_json:
        render.print_json(
            {
                "caller": "user",
                "username": signed_in.username,
                "tenant": signed_in.tenant,
                "groups": signed_in.groups,
                "expiresAt": signed_in.expires_at,
                "sessionFile": str(ctx.session_file),
            }
        )
        return
    groups = f", groups {', '.join(signed_in.groups)}" if signed_in.groups else ""
    render.out.print(
        f"signed in as [bold]{signed_in.username}[/] (tenant {signed_in.tenant or '[red]none[/]'}{groups});"
        f" session kept in {ctx.session_file}"
    )


# -- tasks ------------------------------------------------------------------------------------
# The arguments `start` and `run` share, declared once so their help cannot drift apart.
FlowToRun = Annotated[str, typer.Argument(metavar="FLOW", help="The flow to run.")]
TaskInput = Annotated[str, typer.Option("--input", "-i", help="JSON, or @file.json / @file.yaml.")]
TaskName = Annotated[str | None, typer.Option(help="Idempotency key: the same name gives the same task.")]


@app.command()
def start(
    ctx: typer.Context,
    flow_id: FlowToRun,
    task_input: TaskInput = "{}",
    name: TaskName = None,
    wait: Annotated[bool, typer.Option(help="Wait until the task ends; exit 1 if it did not succeed.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 300,
) -> None:
    """Start a task of FLOW."""
    tasks = ctx.obj.client.tasks
    state = tasks.start(flow_id, _json_argument(task_input, "--input"), name=name)
    if wait:
        state = tasks.wait(state.task_id, timeout=timeout, on_state=_progress(ctx.obj))
    _show_state(ctx.obj, state)
    if wait and not state.succeeded:
        raise typer.Exit(ExitCode.TASK_FAILED)


@app.command()
def run(
    ctx: typer.Context,
    flow_id: FlowToRun,
    task_input: TaskInput = "{}",
    name: TaskName = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the end at most.")] = 300,
) -> None:
    """Run a task of FLOW and print how it ended: a quick run (one round trip for a short flow,
    on the Express machine when the flow allows), then, if it is still going, follow it.
    Exit 1 if it did not succeed."""
    task_input_value = _json_argument(task_input, "--input")
    state = ctx.obj.client.tasks.run(flow_id, task_input_value, name=name, timeout=timeout, on_state=_progress(ctx.obj))
    _show_state(ctx.obj, state)
    if not state.succeeded:
        raise typer.Exit(ExitCode.TASK_FAILED)


def _pages(fetch: Callable[[str | None], Page], all_pages: bool) -> tuple[list[dict[str, Any]], str | None]:
    """The first page's items, or with `all_pages` every page's; and the token of what is left."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = fetch(token)
        items += page.items
        token = page.next_token
        if not (all_pages and token):
            return items, token


@app.command("get")
def get_task(ctx: typer.Context, task_id: Annotated[str, typer.Argument(metavar="TASK")]) -> None:
    """Print a task's current state."""
    _show_state(ctx.obj, ctx.obj.client.tasks.get(task_id))


@app.command("list")
def list_tasks(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only tasks in this status.")] = None,
    flow: Annotated[str | None, typer.Option(help="Only tasks of this flow.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Tasks per page.")] = 20,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow nextToken through every page.")] = False,
) -> None:
    """List tasks, newest first."""
    items, token = _pages(
        lambda token: ctx.obj.client.tasks.page(status=status, flow_id=flow, limit=limit, next_token=token), all_pages
    )
    if ctx.obj.as_json:
        render.print_json({"items": items, "nextToken": token})
        return
    render.states_table(items, f"{len(items)} task(s)")
    if token:
        render.err.print("more tasks exist: use --all")


# The resume and callback commands take the same outcome options.
TokenOption = Annotated[str, typer.Option("--token", help="The resume token the wait step sent to its notify URL.")]
StatusOption = Annotated[str, typer.Option("--status", help="SUCCEEDED or FAILED.")]
OutputOption = Annotated[str | None, typer.Option("--output", help="JSON (or @file) for the wait step's resultPath.")]
ErrorOption = Annotated[
    str | None, typer.Option("--error", help='With FAILED: {"errorName": ..., "errorMessage": ...}.')
]


def _outcome(status: str, output: str | None, error: str | None) -> dict[str, Any]:
    """The keyword arguments of a resume (or callback) from its options."""
    if status not in ("SUCCEEDED", "FAILED"):
        raise CliError("--status must be SUCCEEDED or FAILED", ExitCode.BAD_REQUEST)
    options: dict[str, Any] = {"status": status}
    if output is not None:
        options["output"] = _json_argument(output, "--output")
    if error is not None:
        options["error"] = _json_argument(error, "--error")
    return options


@app.command()
def resume(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    token: TokenOption,
    status: StatusOption = "SUCCEEDED",
    output: OutputOption = None,
    error: ErrorOption = None,
) -> None:
    """Resume a task that waits for an external event."""
    _show_state(ctx.obj, ctx.obj.client.tasks.resume(task_id, token, **_outcome(status, output, error)))


# -- task control: cancel, redrive, heartbeat ---------------------------------------------------
@app.command()
def cancel(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    reason: Annotated[str | None, typer.Option(help="Why: the Cancelled error's message.")] = None,
) -> None:
    """Stop a task in any non-final state; it ends ABORTED with the Cancelled error."""
    _show_state(ctx.obj, ctx.obj.client.tasks.cancel(task_id, reason))


@app.command()
def redrive(ctx: typer.Context, task_id: Annotated[str, typer.Argument(metavar="TASK")]) -> None:
    """Go on with a FAILED, TIMED_OUT or ABORTED task from the step where it ended."""
    _show_state(ctx.obj, ctx.obj.client.tasks.redrive(task_id))


@app.command()
def heartbeat(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    token: TokenOption,
) -> None:
    """Keep a waiting task's heartbeatSeconds wait alive (the external system is still working)."""
    answer = ctx.obj.client.tasks.heartbeat(task_id, token)
    if ctx.obj.as_json:
        render.print_json(answer.to_json())
    else:
        render.out.print(f"heartbeat of task {answer.task_id} at {answer.heartbeat_at}")


@app.command()
def callback(
    ctx: typer.Context,
    wait_id: Annotated[str, typer.Argument(metavar="WAIT", help="The notification's waitId (or its callbackUrl).")],
    token: TokenOption,
    status: StatusOption = "SUCCEEDED",
    output: OutputOption = None,
    error: ErrorOption = None,
) -> None:
    """Resume a wait by its callbackUrl, with the token alone (POST /callbacks/{waitId})."""
    _show_state(ctx.obj, ctx.obj.client.tasks.callback(wait_id, token, **_outcome(status, output, error)))


@app.command("callback-heartbeat")
def callback_heartbeat(
    ctx: typer.Context,
    wait_id: Annotated[str, typer.Argument(metavar="WAIT", help="The notification's waitId (or its callbackUrl).")],
    token: TokenOption,
) -> None:
    """Keep a wait's heartbeatSeconds clock going by its callbackUrl, with the token alone."""
    answer = ctx.obj.client.tasks.callback_heartbeat(wait_id, token)
    if ctx.obj.as_json:
        render.print_json(answer.to_json())
    else:
        render.out.print(f"heartbeat of task {answer.task_id} at {answer.heartbeat_at}")


@app.command()
def history(ctx: typer.Context, task_id: Annotated[str, typer.Argument(metavar="TASK")]) -> None:
    """Every recorded state change of a task, by seq."""
    items = [state.to_json() for state in ctx.obj.client.tasks.history(task_id)]
    if ctx.obj.as_json:
        render.print_json({"items": items})
    else:
        render.states_table(items, f"task {task_id}", by_seq=True)


@app.command()
def watch(
    ctx: typer.Context,
    task_id: Annotated[str | None, typer.Argument(metavar="[TASK]", help="One task (ends when it does).")] = None,
    flow: Annotated[str | None, typer.Option(help="Every task of this flow (until Ctrl-C).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Live view of state changes over the GraphQL subscription (branches, errors, waits included)."""
    from aiwf_sdk.models import FINAL_STATUSES as FINAL
    from aiwf_sdk.watch import Board

    if (task_id is None) == (flow is None):
        raise CliError("watch one TASK, or every task of --flow FLOW", ExitCode.BAD_REQUEST)
    watcher = ctx.obj.client.tasks.watcher()
    ctx.obj.client.flows.page(limit=1)  # a stack that does not answer says so now, not by silence
    realtime_url = ctx.obj.client.realtime_url

    def finished(board: Board) -> bool:
        state = board.task(task_id) if task_id else None
        return state is not None and state["status"] in FINAL

    watched = f"task {task_id}" if task_id else f"flow {flow}"

    def connected(again: bool) -> None:  # on stderr: stdout stays the states alone (--json)
        render.err.print(f"{'reconnected' if again else 'connected'} to {realtime_url}, watching {watched}")

    async def run() -> Board:
        if ctx.obj.as_json:
            return await watcher.run(
                task_id=task_id, flow_id=flow, on_state=render.print_json_line, stop=finished, on_connected=connected
            )
        with render.live_board() as show:
            return await watcher.run(
                task_id=task_id,
                flow_id=flow,
                on_state=lambda _: show(watcher.board),
                stop=finished,
                on_connected=connected,
            )

    try:
        board = asyncio.run(asyncio.wait_for(run(), timeout))
    except TimeoutError:
        if task_id:
            raise CliError(f"task {task_id} did not end within {timeout:g} s", ExitCode.UNAVAILABLE) from None
        return
    except KeyboardInterrupt:
        return
    state = board.task(task_id) if task_id else None
    if state is not None and state["status"] != "SUCCEEDED":
        raise typer.Exit(ExitCode.TASK_FAILED)


def main() -> None:
    """Run the app; API and usage errors become one red line and their exit code."""
    try:
        result = app(prog_name="aiwf", standalone_mode=False)
        if isinstance(result, int):  # without standalone mode, click returns typer.Exit's code
            sys.exit(result)
    except (CliError, AiwfError) as failure:
        exc = failure if isinstance(failure, CliError) else CliError.from_sdk(failure)
        render.err.print(f"[red]error:[/] {exc.message}")
        for detail in exc.details:
            render.err.print(
                f"  {detail.get('path', '')}: {detail.get('message', detail)}"
                if isinstance(detail, dict)
                else f"  {detail}"
            )
        sys.exit(exc.code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        render.err.print("aborted")
        sys.exit(130)
    except ClickException as exc:  # usage errors: bad option, missing argument, out of range
        exc.show()
        sys.exit(ExitCode.BAD_REQUEST)
