"""How states look to a person (rich) or to a script (--json: the API's JSON, unchanged)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

STATUS_STYLE = {
    "PENDING": "dim",
    "RUNNING": "cyan",
    "WAITING": "yellow",
    "POLLING": "blue",
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "TIMED_OUT": "red",
    "ABORTED": "magenta",
}

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one line, however narrow


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str), indent=2) if out.is_terminal else print(json.dumps(value))


def print_json_line(value: Any) -> None:
    """One JSON document per line, flushed: `aiwf --json watch` feeds scripts as states arrive."""
    print(json.dumps(value, default=str), flush=True)


def status(value: str) -> str:
    return f"[{STATUS_STYLE.get(value, 'white')}]{value}[/]"


def error_line(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    where = " ".join(part for part in (error.get("stepId"), error.get("branchId")) if part)
    return f"{error.get('errorName')}: {error.get('errorMessage')}" + (f" (at {where})" if where else "")


def state_panel(state: dict[str, Any]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("task", state["taskId"])
    table.add_row("flow", f"{state['flowId']} v{state['flowVersion']}")
    table.add_row("status", status(state["status"]))
    table.add_row("seq", str(state["seq"]))
    for key in ("currentStep", "branchId", "startedAt", "updatedAt"):
        if state.get(key):
            table.add_row(key, str(state[key]))
    if state.get("waitingFor"):
        table.add_row("waitingFor", json.dumps(state["waitingFor"]))
    if state.get("error"):
        table.add_row("error", f"[red]{error_line(state['error'])}[/]")
    if state.get("output") is not None:
        table.add_row("output", json.dumps(state["output"], indent=2))
    out.print(table)


def states_table(states: list[dict[str, Any]], title: str, *, by_seq: bool = False) -> None:
    table = Table(title=title, title_justify="left")
    if by_seq:
        table.add_column("seq", justify="right")
    else:
        # Whole ids, never wrapped or cut however narrow the terminal: they are copied into
        # `aiwf get` / `resume`; the other columns give way instead.
        table.add_column("task", no_wrap=True, min_width=max((len(s["taskId"]) for s in states), default=4))
        table.add_column("flow")
    table.add_column("status")
    table.add_column("step")
    table.add_column("updated")
    table.add_column("error")
    for state in states:
        first = [str(state["seq"])] if by_seq else [state["taskId"], f"{state['flowId']} v{state['flowVersion']}"]
        table.add_row(
            *first,
            status(state["status"]),
            state.get("currentStep") or "",
            state.get("updatedAt", ""),
            error_line(state.get("error")),
        )
    out.print(table)


def flows_table(flows: list[dict[str, Any]], title: str) -> None:
    """`GET /flows` items: each flow's latest version, and whether it is retired."""
    table = Table(title=title, title_justify="left")
    table.add_column("flow", no_wrap=True, min_width=max((len(f["flowId"]) for f in flows), default=4))
    table.add_column("version", justify="right")
    table.add_column("state")
    table.add_column("updated")
    for flow in flows:
        state = "[magenta]retired[/]" if flow["retired"] else "[green]active[/]"
        table.add_row(flow["flowId"], str(flow["version"]), state, flow.get("updatedAt", ""))
    out.print(table)


def board_table(board: Any) -> Table:
    """Tasks, each followed by its parallel branches, with status, step, seq and error."""
    table = Table(title_justify="left", expand=False)
    # Whole task ids, as in `aiwf list`: they are copied into other commands.
    longest = max((len(task_id) for task_id, _ in board.states), default=4)
    table.add_column("task", no_wrap=True, min_width=longest)
    for column in ("branch", "flow", "status", "step", "seq", "error"):
        table.add_column(column)
    for (task_id, branch_id), state in sorted(board.states.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        table.add_row(
            "" if branch_id else task_id,
            branch_id or "",
            f"{state['flowId']} v{state['flowVersion']}",
            status(state["status"]),
            state.get("currentStep") or "",
            str(state["seq"]),
            error_line(state.get("error")),
        )
    notes = []
    if board.reconnects:
        notes.append(f"reconnected {board.reconnects}x")
    if board.filled:
        notes.append(f"{board.filled} state(s) filled from history")
    table.caption = ", ".join(notes) or None
    return table


@contextmanager
def live_board() -> Iterator[Callable[[Any], None]]:
    with Live(Table(), console=out, refresh_per_second=8, transient=False) as live:
        yield lambda board: live.update(board_table(board))
    out.print()  # the last frame ends its line, also when piped
