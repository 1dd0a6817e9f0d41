"""Patches of moto's DynamoDB (moto 5.2.5) for many tasks at once: one lock, transactions without table copies."""

from __future__ import annotations

import threading
from typing import Any

# -- DynamoDB under concurrency ---------------------------------------------------------------------
#
# moto's server answers each request on its own thread, and its DynamoDB backend has no lock: a
# Query iterating a table while another thread inserts fails with "dictionary changed size during
# iteration" (a 500), and `transact_write_items` deep-copies every table it touches and restores
# the copy when any condition fails, so a failed transaction undoes writes other threads committed
# meanwhile, and every write costs a copy of the whole table. DynamoDB itself is linearizable per
# item and its transactions are all-or-nothing without touching anything else.

_dynamodb_lock = threading.RLock()


def dynamodb_lock() -> threading.RLock:
    """The lock every DynamoDB and DynamoDB Streams request of the embedded AWS runs under."""
    return _dynamodb_lock


def serialize_dynamodb() -> None:
    """One request at a time against moto's DynamoDB tables (and their streams). Idempotent."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action
        if getattr(original, "_aiwf_locked", False):
            continue

        def call_action(self: Any, _original: Any = original) -> Any:
            with _dynamodb_lock:
                return _original(self)

        call_action._aiwf_locked = True  # type: ignore[attr-defined]
        handler.call_action = call_action  # type: ignore[method-assign]


def _transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """All-or-nothing without table copies: check every condition first, then apply every write.

    Runs under the DynamoDB lock (it is called from a request), so nothing changes between the
    checks and the writes. Raises what moto's own raises (TransactionCanceledException with one
    reason per item, in order), so clients get DynamoDB's answers. A write that still fails while
    being applied (a validation moto makes only then) puts back the items already written.
    """
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen: set[tuple[str, str]] = set()
    writes: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
    reasons: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        old_image: dict[str, Any] | None = None
        try:
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = backend.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            identity = (str(table_name), str(dict(sorted(key.items()))))
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
            current = backend.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old_image = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=old_image)
            writes.append((op_type, op, table_name, key, current))
            reasons.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as exc:
            reasons.append(("ConditionalCheckFailed", str(exc.message), old_image))
        except Exception as exc:  # moto's own transaction reports any other failure per item too
            reasons.append((type(exc).__name__, str(exc), old_image))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    applied: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, table_name, key, current in writes:
            if op_type == "Put":
                backend.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                backend.delete_item(table_name, key)
            elif op_type == "Update":
                backend.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )
            else:
                continue
            applied.append((table_name, key, current))
    except Exception:
        for table_name, key, previous in reversed(applied):
            _put_back(backend, table_name, key, previous)
        raise


def _put_back(backend: Any, table_name: str, key: dict[str, Any], previous: Any) -> None:
    """Restore one item as it was (None: absent), in place, without a stream record."""
    table = backend.get_table(table_name)
    hash_value, range_value = backend.get_keys_value(table, key)
    if range_value is not None:
        bucket = table.items[hash_value]
        if previous is None:
            bucket.pop(range_value, None)
        else:
            bucket[range_value] = previous
    elif previous is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = previous


def transactions_without_table_copies() -> None:
    """Replace `DynamoDBBackend.transact_write_items` (see above). Idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.transact_write_items, "_aiwf_copy_free", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _transact_write_items(self, transact_items)

    transact_write_items._aiwf_copy_free = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def count_in_place_updates() -> None:
    """Count, per table, the `UpdateItem`s (also inside transactions) in `table.aiwf_updates`.

    Every other write replaces an item object; `UpdateItem` changes one in place. A reader that
    keeps what it made of each item object (`local.persistence` serializes only the items it has
    not seen) knows from the count when a table's objects may have changed under it. Idempotent.
    """
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.update_item
    if getattr(original, "_aiwf_counted", False):
        return

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        table = self.get_table(table_name)
        table.aiwf_updates = getattr(table, "aiwf_updates", 0) + 1
        return original(self, table_name, *args, **kwargs)

    update_item._aiwf_counted = True  # type: ignore[attr-defined]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
