"""The engine interface (aiwf.engines): one object per engine, picked in one place.

Cancel, redrive, restart, resume, heartbeat and the task API ask the task's engine; no module but
the engines' own tells a durable or Express execution from a Standard one.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from aiwf import engines, standard_executions
from aiwf.engines import DurableEngine, Engine, ExpressEngine, NotRestarted, StandardEngine, engine_for, engine_to_start
from aiwf.repository import Task
from aiwf.settings import get_settings

LAMBDAS = Path(__file__).resolve().parents[3] / "lambdas"
# The modules that may tell engines apart: the picker and each engine's owner.
ENGINE_MODULES = {"engines.py", "express.py", "durable_executions.py", "standard_executions.py"}
ACCOUNT = "arn:aws:states:us-east-1:123456789012"
MACHINE = f"{ACCOUNT}:stateMachine:aiwf-dev-orchestrator"
EXPRESS_MACHINE = f"{ACCOUNT}:stateMachine:aiwf-dev-orchestrator-express"
STANDARD_ARN = f"{ACCOUNT}:execution:aiwf-dev-orchestrator:t-1"
EXPRESS_ARN = f"{ACCOUNT}:express:aiwf-dev-orchestrator-express:t-1"
DURABLE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:aiwf-dev-durable-orchestrator:1/durable-execution/t-1/abc"


def task(execution_arn: str | None, task_id: str = "t-1", **fields: Any) -> Task:
    now = "2026-01-01T00:00:00.000000Z"
    return Task(task_id, "f", 1, "RUNNING", 2, now, now, execution_arn=execution_arn, **fields)


@pytest.fixture(autouse=True)
def machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    monkeypatch.setenv("EXPRESS_STATE_MACHINE_ARN", EXPRESS_MACHINE)
    monkeypatch.delenv("DEFAULT_ENGINE", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(machine, name) of each Standard execution started (none really starts)."""
    calls: list[tuple[str, str]] = []

    def start(machine_arn: str, name: str, task_id: str) -> str:
        calls.append((machine_arn, name))
        return machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    monkeypatch.setattr(standard_executions, "start", start)
    return calls


@pytest.mark.parametrize("engine", [StandardEngine(), ExpressEngine(), DurableEngine()], ids=lambda e: e.name)
def test_each_engine_is_an_engine(engine: Engine) -> None:
    assert isinstance(engine, Engine)


@pytest.mark.parametrize(
    ("arn", "engine"),
    [
        (STANDARD_ARN, StandardEngine),
        (None, StandardEngine),
        (EXPRESS_ARN, ExpressEngine),
        (DURABLE_ARN, DurableEngine),
    ],
)
def test_a_tasks_recorded_execution_says_its_engine(arn: str | None, engine: type) -> None:
    assert type(engine_for(task(arn))) is engine


def test_a_branch_record_runs_on_its_tasks_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = task(DURABLE_ARN)

    class Repo:
        def get(self, task_id: str) -> Task | None:
            return parent if task_id == parent.task_id else None

    monkeypatch.setattr(engines, "TaskRepository", Repo)
    branch = task(None, task_id="t-1-b0", branch_of={"taskId": "t-1", "stepId": "fork", "index": 0})
    assert type(engine_for(branch)) is DurableEngine


def test_a_new_task_takes_its_flows_engine_and_a_quick_run_express_where_it_may(monkeypatch) -> None:
    plain = {"steps": {"done": {"type": "succeed"}}}
    waits = {"steps": {"w": {"type": "wait_for_event", "timeoutSeconds": 60}}}
    assert type(engine_to_start(plain, None)) is StandardEngine
    assert type(engine_to_start(None, 5.0)) is StandardEngine
    assert type(engine_to_start(waits, 5.0)) is StandardEngine
    assert type(engine_to_start({**plain, "engine": "durable"}, 5.0)) is DurableEngine
    quick = engine_to_start(plain, 5.0)
    assert isinstance(quick, ExpressEngine) and quick.until == 5.0
    monkeypatch.setenv("DEFAULT_ENGINE", "durable")
    assert type(engine_to_start(plain, None)) is DurableEngine
    monkeypatch.delenv("DEFAULT_ENGINE")
    monkeypatch.setenv("EXPRESS_STATE_MACHINE_ARN", "")
    get_settings.cache_clear()
    assert type(engine_to_start(plain, 5.0)) is StandardEngine  # no Express machine on this stage


def test_an_express_run_is_not_stopped_and_is_redriven_on_standard(started, monkeypatch) -> None:
    monkeypatch.setattr(standard_executions, "stop", lambda *args: pytest.fail("Express runs cannot be stopped"))
    quick = task(EXPRESS_ARN)
    ExpressEngine().stop(quick, "cancelled")
    assert ExpressEngine().redrive_arn(quick, 2) == f"{ACCOUNT}:execution:aiwf-dev-orchestrator:t-1-r2"
    assert ExpressEngine().redrive(quick, 2) == ExpressEngine().redrive_arn(quick, 2)
    assert ExpressEngine().restart(quick) == STANDARD_ARN
    assert started == [(MACHINE, "t-1-r2"), (MACHINE, "t-1")]


def test_a_standard_restart_starts_the_recorded_execution_or_one_named_after_the_task(started, monkeypatch) -> None:
    other = f"{ACCOUNT}:execution:other-machine:t-1-r3"
    assert StandardEngine().restart(task(other)) == other
    assert StandardEngine().restart(task(None)) == STANDARD_ARN
    assert started == [(f"{ACCOUNT}:stateMachine:other-machine", "t-1-r3"), (MACHINE, "t-1")]
    monkeypatch.setenv("STATE_MACHINE_ARN", "")
    get_settings.cache_clear()
    with pytest.raises(NotRestarted, match="no execution to start again"):
        StandardEngine().restart(task(None))


def test_a_standard_task_with_no_execution_yet_stops_the_one_named_after_it(monkeypatch) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(standard_executions, "stop", lambda arn, message, task_id: stopped.append(arn))
    StandardEngine().stop(task(None), "cancelled")
    assert stopped == [STANDARD_ARN]


def test_a_durable_task_is_not_restarted_and_keeps_its_arn_until_a_redrive_starts(monkeypatch) -> None:
    names: list[str] = []
    monkeypatch.setattr(engines.durable_executions, "start", lambda task_id, name: names.append(name) or "new")
    durable = task(DURABLE_ARN)
    with pytest.raises(NotRestarted, match="durable executions are not restarted"):
        DurableEngine().restart(durable)
    assert DurableEngine().redrive_arn(durable, 1) == DURABLE_ARN
    assert DurableEngine().redrive(durable, 1) == "new" and names == ["t-1-r1"]


def _engine_checks(path: Path) -> list[str]:
    """Where `path` names `is_durable` / `is_express` (a use, an attribute or an import)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        name = {ast.Name: "id", ast.Attribute: "attr", ast.alias: "name"}.get(type(node))
        if name and getattr(node, name) in ("is_durable", "is_express"):
            found.append(f"{path.relative_to(LAMBDAS)}:{node.lineno}")
    return found


def test_only_the_engine_modules_tell_engines_apart() -> None:
    """Every other module asks `engine_for` / `engine_to_start`: no `is_durable` / `is_express`."""
    found = [
        where
        for path in sorted(LAMBDAS.rglob("*.py"))
        if path.name not in ENGINE_MODULES
        for where in _engine_checks(path)
    ]
    assert found == []
