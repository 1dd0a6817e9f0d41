"""DynamoDB tables and the payload bucket: the keys and indexes the runtime code really uses, and
who may use them.

Names come from `schema/state_store.json`, which infra declares from and the runtime reads; the
runtime's own view of it (`aiwf.repository`) is checked against what the stack declares, and key
attributes against the code in `lambdas/aiwf`, so a renamed index or key fails here instead of at
the first query in the cloud. Each function's store access is exactly the statements of its
profiles (`infra.state_store.PROFILES`), and each store variable it gets names what it may touch.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from aiwf import flow_store, repository, settings
from infra.state_access import (
    ANY,
    FLOW_INDEXES,
    FLOWS,
    HISTORY,
    PAYLOAD_OBJECTS,
    PROFILES,
    TASK_INDEXES,
    TASK_STREAMS,
    TASKS,
    profile_environment,
    store_schema,
)
from tests.infra.stackmodel import BUCKET, LAMBDA, REPO_ROOT, TABLE, Resource, Stack, as_list

# Which function may do what with the store (docs/architecture.md shows the same table).
FUNCTION_PROFILES: dict[str, tuple[str, ...]] = {
    "task-api": ("read", "write-tasks", "record-execution", "register-flows", "list-flows", "payloads-write"),
    "process-steps": ("write-tasks", "record-execution", "read-flows", "payloads-write"),
    "durable-orchestrator": ("write-tasks", "record-execution", "read-flows", "payloads-write"),
    "finalize": ("write-tasks", "payloads-write"),
    "status-reconciler": ("write-tasks", "payloads-write"),
    "graphql-resolver": ("read", "payloads-read"),
    "graphql-control": ("read", "write-tasks", "record-execution", "register-flows", "list-flows", "payloads-write"),
    "state-publisher": ("read-stream", "payloads-read"),
    "state-replayer": ("replay", "payloads-read"),
    "flow-registrar": ("register-flows",),
    "authorizer": (),  # the REST authorizer reads only the user pool's public keys
}

AIWF = REPO_ROOT / "lambdas" / "aiwf"
DYNAMODB_TYPES = {"S", "N", "B"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def get_keys(path: Path) -> list[dict[str, str]]:
    """Every literal `Key={"attr": {"S": ...}, ...}` argument in a module, as `{attr: type}`."""
    keys = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.keyword) and node.arg == "Key" and isinstance(node.value, ast.Dict):
            key: dict[str, str] = {}
            for name, typed in zip(node.value.keys, node.value.values, strict=True):
                assert isinstance(name, ast.Constant) and isinstance(typed, ast.Dict), ast.unparse(node)
                (kind,) = (k.value for k in typed.keys if isinstance(k, ast.Constant))
                key[name.value] = kind
            keys.append(key)
    assert keys, f"no Key= arguments in {path.name}: update this test"
    return keys


def _table(stack: Stack, suffix: str) -> Resource:
    matches = [t for t in stack.of_type(TABLE) if t.inputs["name"] == f"aiwf-{stack.stage}-{suffix}"]
    assert len(matches) == 1, f"no table aiwf-{stack.stage}-{suffix}"
    return matches[0]


def _key_schema(table: Resource) -> dict[str, str]:
    """`{attribute: type}` of the table's primary key (hash then range)."""
    types = {a["name"]: a["type"] for a in table.inputs["attributes"]}
    names = [table.inputs["hashKey"], *([table.inputs["rangeKey"]] if table.inputs.get("rangeKey") else [])]
    return {name: types[name] for name in names}


def _short_name(stack: Stack, function: Resource) -> str:
    return function.inputs["name"].removeprefix(f"aiwf-{stack.stage}-")


def _store_values(stack: Stack) -> dict[str, str]:
    """`{variable: value}` of every store variable, from what the stack declares."""
    schema = store_schema()
    values = {table["environment"]: _table(stack, name).inputs["name"] for name, table in schema["tables"].items()}
    values[schema["payloads"]["environment"]] = stack.one(BUCKET).outputs["bucket"]
    values[schema["payloads"]["thresholdEnvironment"]] = str(stack.setting("payloadThresholdBytes"))
    return values


def test_tables_are_the_ones_the_schema_declares(stack: Stack) -> None:
    names = {t.inputs["name"] for t in stack.of_type(TABLE)}
    assert names == {f"aiwf-{stack.stage}-{table}" for table in store_schema()["tables"]}


def test_every_function_has_its_store_profiles(stack: Stack) -> None:
    assert {_short_name(stack, f) for f in stack.functions()} == set(FUNCTION_PROFILES)
    for profiles in FUNCTION_PROFILES.values():
        assert set(profiles) <= set(PROFILES)
    assert {p for profiles in FUNCTION_PROFILES.values() for p in profiles} == set(PROFILES), "a profile nobody uses"


def test_store_variables_name_exactly_what_each_function_may_touch(stack: Stack) -> None:
    """A function gets the variables of its profiles, each naming a declared table or the bucket, and
    no other store variable (the runtime cannot be pointed at a table it has no grant on)."""
    values = _store_values(stack)
    for function in stack.functions():
        variables = function.inputs["environment"]["variables"]
        expected = {
            v for profile in FUNCTION_PROFILES[_short_name(stack, function)] for v in profile_environment(profile)
        }
        assert {v for v in variables if v in values} == expected, function.name
        for variable in expected:
            assert variables[variable] == values[variable], (function.name, variable)


def _resources(stack: Stack, kind: str) -> list[str]:
    tasks = _table(stack, "tasks").outputs["arn"]
    flows = _table(stack, "flows").outputs["arn"]
    bucket = stack.one(BUCKET).outputs["arn"]
    return {
        TASKS: [tasks],
        TASK_INDEXES: [f"{tasks}/index/{index}" for index in store_schema()["tables"]["tasks"]["indexes"]],
        TASK_STREAMS: [f"{tasks}/stream/*"],
        HISTORY: [_table(stack, "history").outputs["arn"]],
        FLOWS: [_table(stack, "flows").outputs["arn"]],
        FLOW_INDEXES: [f"{flows}/index/{index}" for index in store_schema()["tables"]["flows"]["indexes"]],
        PAYLOAD_OBJECTS: [f"{bucket}/{store_schema()['payloads']['keyPrefix']}*"],
        ANY: ["*"],
    }[kind]


def _rendered(statement: dict[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    return statement["Sid"], tuple(sorted(as_list(statement["Action"]))), tuple(as_list(statement["Resource"]))


def test_each_function_policy_on_the_store_is_exactly_its_profiles(stack: Stack) -> None:
    """The statements that touch the store are the profiles' statements, nothing restated beside them."""
    tables = [t.outputs["arn"] for t in stack.of_type(TABLE)]
    bucket = stack.one(BUCKET).outputs["arn"]
    for function in stack.functions():
        expected = [
            (
                grant.sid,
                tuple(sorted(set(grant.actions))),
                tuple(r for kind in grant.on for r in _resources(stack, kind)),
            )
            for profile in FUNCTION_PROFILES[_short_name(stack, function)]
            for grant in PROFILES[profile]
        ]
        found = stack.statements_of_role(stack.role_by_arn(function.inputs["role"]))
        store = [
            _rendered(s)
            for s in found
            if any(a.startswith(("dynamodb:", "s3:")) for a in as_list(s["Action"]))
            or any(r.startswith((*tables, bucket)) for r in as_list(s["Resource"]))
        ]
        assert store == expected, function.name
        sids = [s.get("Sid") for s in found]
        assert len(sids) == len(set(sids)), f"{function.name}: Sids repeat: {sids}"


def test_the_runtime_reads_the_names_the_stack_declares() -> None:
    """`aiwf.settings` and `aiwf.repository` read the same file infra declares from."""
    assert settings.store_schema() == store_schema()
    indexes = store_schema()["tables"]["tasks"]["indexes"]
    assert set(repository.INDEX_ON.values()) == set(indexes)
    assert {repository.SORT_KEY} == {index["sortKey"] for index in indexes.values()}
    assert repository.LIST_ATTRIBUTE in repository.INDEX_ON


def test_tasks_table_streams_new_images(stack: Stack) -> None:
    """The stream is the outbox that publishes every committed change; subscribers need the new state."""
    tasks = _table(stack, "tasks")
    assert tasks.inputs["streamEnabled"] is True
    assert tasks.inputs["streamViewType"] == "NEW_AND_OLD_IMAGES"
    assert tasks.outputs["streamArn"].startswith(f"{tasks.outputs['arn']}/stream/")


def test_tasks_table_key_is_what_the_repository_reads(stack: Stack) -> None:
    expected = {frozenset(k.items()) for k in get_keys(AIWF / "repository.py")}
    assert expected == {frozenset(_key_schema(_table(stack, "tasks")).items())}


def test_tasks_table_has_the_indexes_the_repository_queries(stack: Stack) -> None:
    """Listing newest first queries one index per filter (all, status, flow; and each within one
    tenant), sorted by the sort key, descending; a callback finds its wait's record over the wait index."""
    tasks = _table(stack, "tasks")
    types = {a["name"]: a["type"] for a in tasks.inputs["attributes"]}
    declared = {index["name"]: index for index in tasks.inputs.get("globalSecondaryIndexes", [])}
    queried = {name: partition for partition, name in repository.INDEX_ON.items()}
    assert set(queried) == set(declared), f"queried {sorted(queried)}, declared {sorted(declared)}"
    tenant_keys = {repository.TENANT_KEY, repository.TENANT_STATUS_KEY, repository.TENANT_FLOW_KEY}
    assert {"flowId", "status", repository.LIST_ATTRIBUTE, repository.WAIT_ATTRIBUTE} | tenant_keys == set(
        repository.INDEX_ON
    )
    for name, partition in queried.items():
        index = declared[name]
        assert index["hashKey"] == partition, name
        assert types[partition] == "S", name
        assert index["rangeKey"] == repository.SORT_KEY and types[repository.SORT_KEY] == "S", name
        assert index["projectionType"] == "ALL", f"{name}: a list page reads whole tasks from the index"


def test_history_table_key_is_task_then_seq(stack: Stack) -> None:
    """History is read per task, in `seq` order (a number, so 10 sorts after 9)."""
    assert _key_schema(_table(stack, "history")) == {"taskId": "S", "seq": "N"}


def test_flows_table_key_is_what_the_flow_store_reads(stack: Stack) -> None:
    expected = {frozenset(k.items()) for k in get_keys(AIWF / "flow_store.py")}
    assert expected == {frozenset(_key_schema(_table(stack, "flows")).items())}


def test_attribute_definitions_are_exactly_the_key_attributes(stack: Stack) -> None:
    """DynamoDB rejects a table that defines an attribute no key or index uses."""
    for table in stack.of_type(TABLE):
        defined = [a["name"] for a in table.inputs["attributes"]]
        used = {table.inputs["hashKey"], table.inputs.get("rangeKey")} - {None}
        for index in table.inputs.get("globalSecondaryIndexes", []):
            used |= {index["hashKey"], index.get("rangeKey")} - {None}
        assert len(defined) == len(set(defined)), table.name
        assert set(defined) == used, f"{table.name}: defined {sorted(defined)}, used by keys {sorted(used)}"
        assert {a["type"] for a in table.inputs["attributes"]} <= DYNAMODB_TYPES


def test_tables_are_encrypted_and_on_demand(stack: Stack) -> None:
    for table in stack.of_type(TABLE):
        assert table.inputs["serverSideEncryption"]["enabled"] is True, table.name
        assert table.inputs["billingMode"] == "PAY_PER_REQUEST", table.name


def _attached_to_bucket(stack: Stack, type_: str) -> list[dict[str, Any]]:
    bucket = stack.one(BUCKET)
    return [r.inputs for r in stack.of_type(type_) if r.inputs.get("bucket") == bucket.id]


def test_payload_bucket_is_encrypted_and_private(stack: Stack) -> None:
    """Step inputs and outputs can be anything a user sent: never public, always encrypted."""
    bucket = stack.one(BUCKET)
    assert bucket.inputs["bucketPrefix"].startswith(f"aiwf-{stack.stage}-")
    (encryption,) = _attached_to_bucket(
        stack, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    algorithms = {rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] for rule in encryption["rules"]}
    assert algorithms and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}
    (block,) = _attached_to_bucket(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, flag
    variable = store_schema()["payloads"]["environment"]
    for function in stack.of_type(LAMBDA):
        variables = function.inputs["environment"]["variables"]
        assert variables.get(variable, bucket.outputs["bucket"]) == bucket.outputs["bucket"], function.name


def test_flows_table_lists_heads_over_the_index_the_flow_store_queries(stack: Stack) -> None:
    """`GET /flows` queries one sparse index of flow heads by flowId: the flow store and the table agree."""
    flows = _table(stack, "flows")
    declared = {index["name"]: index for index in flows.inputs.get("globalSecondaryIndexes", [])}
    assert set(declared) == {flow_store.LIST_INDEX}
    index = declared[flow_store.LIST_INDEX]
    assert (index["hashKey"], index["rangeKey"]) == (flow_store.LIST_ATTRIBUTE, "flowId")
    assert index["projectionType"] == "ALL", "a page shows the head's fields"
