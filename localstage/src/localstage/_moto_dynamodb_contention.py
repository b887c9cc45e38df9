"""Inside the moto process: in ``conflicts`` mode, every third transaction meets a conflict.

On AWS, "DynamoDB cancels a ``TransactWriteItems`` request under the following
circumstances: ... There is an ongoing ``TransactWriteItems`` operation that conflicts
with a concurrent ``TransactWriteItems`` request. In this case the ``TransactWriteItems``
operation fails with a ``TransactionCanceledException``"
(DynamoDB API Reference, TransactWriteItems,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html;
DynamoDB Developer Guide, "Transaction conflict handling in DynamoDB",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling).
Its ``CancellationReasons`` are "An ordered list of errors for each item in the request
which caused the transaction to get cancelled ... ordered according to the ordering of
the TransactWriteItems request parameter", the contended item's being "Code:
``TransactionConflict``", "Message: Transaction is ongoing for the item" (API Reference,
TransactionCanceledException and CancellationReason,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html).

The moto process serves one request at a time (:mod:`localstage._moto_process`), so no
two transactions ever overlap and that cancellation never happens here by itself. In
``conflicts`` mode (:mod:`localstage.contention`) this patch cancels the first attempt of
every third transaction the process receives, before any write: its first item
``TransactionConflict``, the others ``None``, answered by moto's own
``TransactionCanceledException`` (HTTP 400, ``__type``
``com.amazonaws.dynamodb.v20120810#TransactionCanceledException``, message "Transaction
cancelled, please refer cancellation reasons for specific reasons [TransactionConflict,
None]"). botocore does not retry that error; the caller does, and its retry (the same
items again) commits: a request whose items equal those of a cancelled one is another
attempt of that transaction, neither counted nor cancelled. A request DynamoDB would
refuse as invalid (over 100 actions, two on one item, an unknown table) is left to moto,
which refuses it as AWS does, and is not counted either.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from localstage._moto_patch import Patch
from localstage.contention import conflicts_in_this_process

#: The first attempt of every this-many-th transaction is cancelled.
CONFLICT_EVERY = 3
#: The contended item's reason, as the API Reference lists it.
CONFLICT_CODE = "TransactionConflict"
CONFLICT_MESSAGE = "Transaction is ongoing for the item"
#: "TransactItems ... Length Constraints: Minimum number of 1 item. Maximum number of 100 items."
MAX_ACTIONS = 100
_ACTIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


def fingerprint(transact_items: list[dict[str, Any]]) -> str:
    """What identifies a transaction's attempts: a digest of its items, in order."""
    text = json.dumps(transact_items, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ConflictSchedule:
    """Which transactions meet a conflict: the first attempt of every ``every``-th.

    One per moto process (the patch's), counted under a lock of its own although the
    process serves one request at a time: a test may call moto from threads in-process.
    """

    def __init__(self, every: int = CONFLICT_EVERY) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._transactions = 0
        self._cancelled: set[str] = set()

    def cancels(self, transact_items: list[dict[str, Any]]) -> bool:
        """Count a transaction's attempt; True if it is to be cancelled."""
        digest = fingerprint(transact_items)
        with self._lock:
            if digest in self._cancelled:
                # A retry of a transaction cancelled here: its first attempt was.
                return False
            self._transactions += 1
            if self._transactions % self.every:
                return False
            self._cancelled.add(digest)
            return True


def is_well_formed(backend: Any, transact_items: list[dict[str, Any]]) -> bool:
    """Whether DynamoDB would run the transaction at all (else moto refuses it).

    Checks what moto's ``transact_write_items`` refuses with a ``ValidationException``
    or ``ResourceNotFoundException`` before any write: at most 100 actions, one action
    per entry, tables that exist, no two actions on one item.
    """
    if not transact_items or len(transact_items) > MAX_ACTIONS:
        return False
    targets: set[tuple[str, str]] = set()
    try:
        for entry in transact_items:
            if len(entry) != 1:
                return False
            action, operation = next(iter(entry.items()))
            if action not in _ACTIONS:
                return False
            table_name = operation["TableName"]
            if table_name not in backend.tables:
                return False
            if action == "Put":
                table = backend.tables[table_name]
                names = [table.hash_key_attr, table.range_key_attr]
                key = {name: operation["Item"][name] for name in names if name}
            else:
                key = operation["Key"]
            target = (table_name, json.dumps(key, sort_keys=True))
            if target in targets:
                return False
            targets.add(target)
    except (KeyError, TypeError, AttributeError, StopIteration):
        return False
    return True


def conflict(transact_items: list[dict[str, Any]]) -> Exception:
    """moto's ``TransactionCanceledException``: the first item contended, the rest not."""
    from moto.dynamodb.exceptions import TransactionCanceledException

    reasons: list[Any] = [(CONFLICT_CODE, CONFLICT_MESSAGE, None)]
    reasons += [(None, None, None)] * (len(transact_items) - 1)
    return TransactionCanceledException(reasons)


def patches(schedule: ConflictSchedule | None = None) -> list[Patch]:
    """Cancel the transactions ``schedule`` picks, in ``conflicts`` mode, before moto's
    ``transact_write_items`` writes anything."""
    from moto.dynamodb import models

    chosen = schedule or ConflictSchedule()
    transact_write_items = models.DynamoDBBackend.transact_write_items

    def transact(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        if (
            conflicts_in_this_process()
            and is_well_formed(backend, transact_items)
            and chosen.cancels(transact_items)
        ):
            raise conflict(transact_items)
        return transact_write_items(backend, transact_items)

    return [Patch(models.DynamoDBBackend, "transact_write_items", transact)]
