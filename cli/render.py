"""How states look to a person (rich) or to a script (--json: the API's JSON, unchanged)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
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
err = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str), indent=2) if out.is_terminal else print(json.dumps(value))


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
        table.add_column("task")
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
