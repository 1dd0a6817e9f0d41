"""Flow versions on moto, in process: each changed registration is a new immutable version, an
unchanged one is not, concurrent registrations each get their own number, tasks read the one they pinned."""

from __future__ import annotations

import uuid

import pytest

from aiwf.flow_store import FlowStore, FlowVersion
from tests.unit.lambdas.moto_runtime import aws_tables  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("aws_tables")


def _document(flow_id: str, text: str = "hi") -> dict:
    return {"id": flow_id, "startAt": "a", "steps": {"a": {"type": "succeed"}}, "description": text}


def test_versions_grow_only_when_the_document_changes():
    flow_id = f"f-{uuid.uuid4().hex[:6]}"
    store = FlowStore()
    first, created = store.register(_document(flow_id))
    assert (first.version, created) == (1, True)
    again, created = store.register(_document(flow_id))
    assert (again.version, created) == (1, False)
    second, created = store.register(_document(flow_id, "changed"))
    assert (second.version, created) == (2, True)
    assert store.get(flow_id).version == 2
    assert store.get(flow_id, 1).document == _document(flow_id)  # a pinned version never changes
    assert store.get(flow_id, 3) is None and store.get("missing") is None


def test_two_registrations_racing_for_one_number_both_get_a_version(monkeypatch):
    """The put is conditional on the number being free: the writer that lost reads again and takes the next."""
    flow_id = f"f-{uuid.uuid4().hex[:6]}"
    FlowStore().register(_document(flow_id))
    real_get = FlowStore.get
    raced: list[FlowVersion] = []

    def get_then_race(self: FlowStore, wanted: str, version: int | None = None) -> FlowVersion | None:
        latest = real_get(self, wanted, version)
        if not raced and version is None:
            # Another writer registers between this read and this writer's put.
            raced.append(FlowVersion(wanted, 0, {}, "", ""))
            theirs, created = FlowStore().register(_document(flow_id, "theirs"))
            assert created and theirs.version == 2
        return latest

    monkeypatch.setattr(FlowStore, "get", get_then_race)
    mine, created = FlowStore().register(_document(flow_id, "mine"))
    monkeypatch.undo()
    assert created and mine.version == 3
    documents = {v: FlowStore().get(flow_id, v).document["description"] for v in (1, 2, 3)}
    assert documents == {1: "hi", 2: "theirs", 3: "mine"}
