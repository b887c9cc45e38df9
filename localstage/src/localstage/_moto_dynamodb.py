"""Inside the moto process: TransactWriteItems in time independent of table size.

moto makes a transaction atomic by deep-copying every table it touches before it
writes, and putting the copies back if an item fails. A copy includes every item and
every stream record the table ever had (moto never trims its streams), so each
transaction cost grew with the table's history: the fan-out counter (one job item,
thousands of updates) took ~0.6 s per decrement after 1,000 subtasks. Here the copies
are skipped (the table copies itself as itself) and only what the transaction can
change is saved: the items it names, and the length of each table's stream. If the
transaction fails, those items are put back and the stream records it added are
dropped, which is what moto's rollback restores too. Requests run one at a time in
this process (``serialized``), so nothing else changes the tables meanwhile.
"""

from __future__ import annotations

import contextvars
import copy
from typing import Any

from localstage._moto_patch import Patch

_SKIP_TABLE_COPIES: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "skip_table_copies", default=False
)

#: (table, hash key, range key or None, the item before, or None if absent)
_Saved = tuple[Any, Any, Any, Any]


def _saved_state(
    backend: Any, transact_items: list[dict[str, Any]]
) -> tuple[list[_Saved], dict[int, tuple[Any, int]]] | None:
    """What the transaction can change, or None to let moto copy the tables itself."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved: list[_Saved] = []
    streams: dict[int, tuple[Any, int]] = {}
    try:
        for entry in transact_items:
            _, operation = next(iter(entry.items()))
            table = backend.tables[operation["TableName"]]
            key = operation["Item"] if "Item" in operation else operation["Key"]
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            before = table.get_item(hash_key, range_key)
            saved.append((table, hash_key, range_key, copy.deepcopy(before)))
            if table.stream_shard is not None:
                streams[id(table)] = (table, len(table.stream_shard.items))
    except Exception:
        return None
    return saved, streams


def _restore(saved: list[_Saved], streams: dict[int, tuple[Any, int]]) -> None:
    for table, hash_key, range_key, before in reversed(saved):
        if range_key is not None:
            bucket = table.items[hash_key]
            if before is None:
                bucket.pop(range_key, None)
            else:
                bucket[range_key] = before
            if not bucket:
                table.items.pop(hash_key, None)
        elif before is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = before
    for table, length in streams.values():
        if table.stream_shard is not None and len(table.stream_shard.items) > length:
            del table.stream_shard.items[length:]


def patches() -> list[Patch]:
    """Patches of moto's DynamoDB backend."""
    from moto.dynamodb import models as typed_models
    from moto.dynamodb.models import table as typed_table

    models: Any = typed_models
    table_module: Any = typed_table

    def deepcopy_table(table: Any, memo: dict[int, Any]) -> Any:
        if _SKIP_TABLE_COPIES.get():
            return table
        # The default deep copy of a plain object, for every other caller.
        twin = table.__class__.__new__(table.__class__)
        memo[id(table)] = twin
        for name, value in table.__dict__.items():
            setattr(twin, name, copy.deepcopy(value, memo))
        return twin

    transact_write_items = models.DynamoDBBackend.transact_write_items

    def transact(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        state = _saved_state(backend, transact_items)
        if state is None:
            return transact_write_items(backend, transact_items)
        token = _SKIP_TABLE_COPIES.set(True)
        try:
            return transact_write_items(backend, transact_items)
        except BaseException:
            _restore(*state)
            raise
        finally:
            _SKIP_TABLE_COPIES.reset(token)

    return [
        Patch(table_module.Table, "__deepcopy__", deepcopy_table),
        Patch(models.DynamoDBBackend, "transact_write_items", transact),
    ]
