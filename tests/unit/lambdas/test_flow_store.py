"""Flow versions on moto, in process: each changed registration is a new immutable version, an
unchanged one is not, concurrent registrations each get their own number, tasks read the one they pinned."""

from __future__ import annotations

import uuid

import pytest

from aiwf import standard_executions, tasks
from aiwf.errors import BadRequest, Conflict
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


def test_flows_list_once_each_at_their_latest_version_in_pages():
    store = FlowStore()
    ids = sorted(f"f-{uuid.uuid4().hex[:6]}" for _ in range(5))
    for flow_id in ids:
        store.register(_document(flow_id))
    store.register(_document(ids[0], "changed"))

    pages, token = [], None
    while True:
        heads, token = store.list_page(2, token)
        pages.append(heads)
        if token is None:
            break
    listed = [head for page in pages for head in page]
    assert [head.flow_id for head in listed] == ids
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 3
    assert {head.flow_id: head.version for head in listed}[ids[0]] == 2
    assert not any(head.retired for head in listed)
    assert listed[0].summary().keys() == {"flowId", "version", "retired", "updatedAt"}


def test_a_bad_next_token_is_a_400_not_a_500():
    with pytest.raises(BadRequest) as raised:
        FlowStore().list_page(2, "%%not-a-token")
    assert raised.value.code == "INVALID_NEXT_TOKEN"


def test_retire_keeps_versions_and_a_registration_revives():
    flow_id = f"f-{uuid.uuid4().hex[:6]}"
    store = FlowStore()
    assert store.retire(flow_id) is None  # never registered
    store.register(_document(flow_id))

    retired = store.retire(flow_id)
    assert (retired.flow_id, retired.version, retired.retired) == (flow_id, 1, True)
    assert store.retire(flow_id).retired  # twice is harmless
    assert store.head(flow_id).retired
    assert store.get(flow_id, 1).document == _document(flow_id)  # pinned versions stay readable
    assert [h.retired for h in store.list_page(10)[0]] == [True]

    same, created = store.register(_document(flow_id))  # the same document: active again, no new version
    assert (same.version, created) == (1, False)
    assert not store.head(flow_id).retired
    store.retire(flow_id)
    changed, created = store.register(_document(flow_id, "changed"))
    assert (changed.version, created) == (2, True)
    assert store.head(flow_id) == store.list_page(10)[0][0]
    assert (store.head(flow_id).version, store.head(flow_id).retired) == (2, False)


def test_a_task_of_a_retired_flow_is_refused_and_a_named_retry_must_match(monkeypatch):
    monkeypatch.setattr(
        standard_executions, "start", lambda machine, name, task_id: f"arn:aws:states:us-east-1:1:execution:m:{name}"
    )
    flow_id, other = (f"f-{uuid.uuid4().hex[:6]}" for _ in range(2))
    store = FlowStore()
    store.register(_document(flow_id))
    store.register(_document(other))
    name = f"order-{uuid.uuid4().hex[:6]}"

    task, created = tasks.start_task(flow_id, {"a": 1, "b": [1, 2]}, name)
    again, created_again = tasks.start_task(flow_id, {"b": [1, 2], "a": 1}, name)  # same input, keys reordered
    assert created and not created_again and again.task_id == task.task_id
    for flow, task_input in ((other, {"a": 1, "b": [1, 2]}), (flow_id, {"a": 2, "b": [1, 2]})):
        with pytest.raises(Conflict) as raised:
            tasks.start_task(flow, task_input, name)
        assert raised.value.code == "IDEMPOTENCY_CONFLICT"

    store.retire(flow_id)
    with pytest.raises(Conflict) as raised:
        tasks.start_task(flow_id, {}, None)
    assert raised.value.code == "FLOW_RETIRED"
    assert tasks.start_task(flow_id, {"a": 1, "b": [1, 2]}, name)[0].task_id == task.task_id  # a retry, not new
    store.register(_document(flow_id))
    assert tasks.start_task(flow_id, {}, None)[1]


def test_a_redeploy_leaves_a_users_newer_version_and_a_retirement_alone():
    """The stack registers its shipped flows at every deploy (a `make dev` restart too): only a new
    flow or a changed file becomes a version."""
    flow_id = f"f-{uuid.uuid4().hex[:6]}"
    store = FlowStore()
    shipped = _document(flow_id, "shipped")
    assert [store.deploy(shipped)[1], store.deploy(shipped)[1]] == ["registered", "unchanged"]
    mine, _ = store.register(_document(flow_id, "the user's own"))
    flow, outcome = store.deploy(shipped)
    assert (outcome, flow.version, store.get(flow_id).version) == ("unchanged", mine.version, 2)
    store.retire(flow_id)
    assert store.deploy(shipped)[1] == "unchanged" and store.head(flow_id).retired
    changed, outcome = store.deploy(_document(flow_id, "the file changed"))
    assert (outcome, changed.version) == ("updated", 3) and not store.head(flow_id).retired


def test_a_flow_deployed_before_the_checksum_was_recorded_counts_as_deployed():
    flow_id = f"f-{uuid.uuid4().hex[:6]}"
    store = FlowStore()
    store.register(_document(flow_id, "shipped"))  # as the old registrar did: no deployedChecksum
    store.register(_document(flow_id, "the user's own"))
    assert store.deploy(_document(flow_id, "shipped"))[1] == "unchanged"
    assert store.get(flow_id).version == 2
