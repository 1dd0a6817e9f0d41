"""DynamoDB tables and the payload bucket: the keys and indexes the runtime code really uses.

Expectations are read from the code in `lambdas/aiwf` (index names, key attributes), so a renamed
index or key in the repository fails here instead of at the first query in the cloud.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.infra.stackmodel import BUCKET, LAMBDA, REPO_ROOT, TABLE, Resource, Stack

AIWF = REPO_ROOT / "lambdas" / "aiwf"
DYNAMODB_TYPES = {"S", "N", "B"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def queried_task_indexes() -> dict[str, str]:
    """`{index name: partition key}` from the repository's `index, key_name, ... = "byX", "attr", ...`."""
    found: dict[str, str] = {}
    for node in ast.walk(_tree(AIWF / "repository.py")):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Tuple)
            and isinstance(node.value, ast.Tuple)
            and [getattr(t, "id", None) for t in node.targets[0].elts[:2]] == ["index", "key_name"]
        ):
            index, key = (getattr(v, "value", None) for v in node.value.elts[:2])
            if isinstance(index, str) and isinstance(key, str):
                found[index] = key
    if not found:
        pytest.fail(
            "no `index, key_name, ... = ...` query selection found in lambdas/aiwf/repository.py: update this test"
        )
    return found


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


def test_tables_are_the_ones_the_functions_are_told_about(stack: Stack) -> None:
    """Each function's TASKS/HISTORY/FLOWS_TABLE variables name the tables declared here."""
    names = {t.inputs["name"] for t in stack.of_type(TABLE)}
    assert names == {f"aiwf-{stack.stage}-{s}" for s in ("tasks", "history", "flows")}
    for function in stack.of_type(LAMBDA):
        variables = function.inputs["environment"]["variables"]
        for variable, suffix in (("TASKS_TABLE", "tasks"), ("HISTORY_TABLE", "history"), ("FLOWS_TABLE", "flows")):
            assert variables[variable] == f"aiwf-{stack.stage}-{suffix}", function.name


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
    """Listing newest first queries byStartedAt / byStatus / byFlow, sorted by `sortKey`, descending."""
    tasks = _table(stack, "tasks")
    types = {a["name"]: a["type"] for a in tasks.inputs["attributes"]}
    declared = {index["name"]: index for index in tasks.inputs.get("globalSecondaryIndexes", [])}
    queried = queried_task_indexes()
    assert set(queried) <= set(declared), f"queried but not declared: {sorted(set(queried) - set(declared))}"
    repository = (AIWF / "repository.py").read_text()
    for name, partition in queried.items():
        index = declared[name]
        assert index["hashKey"] == partition, name
        assert types[partition] == "S", name
        assert index["rangeKey"] == "sortKey" and types["sortKey"] == "S", name
        assert index["projectionType"] == "ALL", f"{name}: a list page reads whole tasks from the index"
    assert '"sortKey":' in repository, "the repository no longer writes sortKey: update the index range key"


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
    for function in stack.of_type(LAMBDA):
        assert function.inputs["environment"]["variables"]["PAYLOAD_BUCKET"] == bucket.outputs["bucket"]
