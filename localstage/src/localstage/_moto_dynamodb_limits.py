"""Inside the moto process: DynamoDB requests over AWS's limits, or naming values no
expression uses, are refused.

Unused values: DynamoDB refuses a request whose ``ExpressionAttributeValues`` hold a
placeholder none of its expressions use ("Value provided in ExpressionAttributeValues
unused in expressions: keys: {:v}"; the developer guide: "If you define an expression
attribute value, you must use it consistently throughout the entire expression",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ExpressionAttributeValues.html).
moto checks that for ``UpdateItem`` only (names it checks everywhere); here
``PutItem``, ``DeleteItem``, ``Query``, ``Scan`` and each action of a
``TransactWriteItems`` are checked too. Expressions have no string literals, so the
placeholders an expression uses are its ``:name`` tokens.

``TransactWriteItems``: "The aggregate size of the items in the transaction cannot
exceed 4 MB" (DynamoDB Developer Guide, "Amazon DynamoDB Transactions: How it works",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html,
and the API reference). moto checks each item's 400 KB and the 100 actions, not the
total, so a transaction of eleven 390 KB items commits here and fails on AWS.

The sizes are moto's own (an attribute's name in UTF-8 plus ``DynamoType.size()``, as
``Item.size()`` sums them); 4 MB is 4 x 1024 x 1024 bytes, as DynamoDB's "400 KB" item
limit is 400 x 1024. AWS documents which items count, not how: a ``Put`` counts the item
it writes; an ``Update``, ``Delete`` or ``ConditionCheck`` the item it addresses as
stored (its key when there is none), an ``Update`` at least its key plus the values it
sets. The refusal is a ``ValidationException`` (400) for the whole request before any
write; AWS documents no wording, so the message is the one other emulators use.
"""

from __future__ import annotations

import re
from typing import Any

from localstage._moto_patch import Patch

#: "The aggregate size of the items in the transaction cannot exceed 4 MB."
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


def attributes_size(attributes: dict[str, Any]) -> int:
    """moto's size of an item given as DynamoDB JSON (``Item.size()``'s sum)."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    return sum(bytesize(name) + DynamoType(value).size() for name, value in attributes.items())


def action_size(backend: Any, action: str, operation: dict[str, Any]) -> int:
    """The size one action of a transaction adds to its aggregate.

    Parameters
    ----------
    backend
        moto's ``DynamoDBBackend``, to read the item an action addresses.
    action
        ``Put``, ``Update``, ``Delete`` or ``ConditionCheck``.
    operation
        The action's request members (``TableName``, ``Item`` or ``Key``, ...).
    """
    if action == "Put":
        return attributes_size(operation["Item"])
    key = operation["Key"]
    stored = backend.get_item(operation["TableName"], key)
    size = stored.size() if stored is not None else attributes_size(key)
    if action == "Update":
        # What the update writes is at least its key and the values it sets.
        written = attributes_size(key) + sum(
            attributes_size({name: value})
            for name, value in (operation.get("ExpressionAttributeValues") or {}).items()
        )
        size = max(size, written)
    return size


def transaction_size(backend: Any, transact_items: list[dict[str, Any]]) -> int:
    """The aggregate size of a transaction's items (:func:`action_size` summed)."""
    return sum(
        action_size(backend, action, operation)
        for entry in transact_items
        for action, operation in entry.items()
    )


def check_transaction_size(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """Raise moto's ``ValidationException`` for a transaction over 4 MB in all."""
    from moto.dynamodb.exceptions import MockValidationException

    try:
        total = transaction_size(backend, transact_items)
    except Exception:
        # A malformed request (no Key, an unknown table or action): moto's own
        # validation refuses it with AWS's error; this check has nothing to add.
        return
    if total > MAX_TRANSACTION_BYTES:
        raise MockValidationException("Transaction request cannot be larger than 4 MB")


#: A value placeholder in an expression (``:amount``).
_VALUE_PLACEHOLDER = re.compile(r":[A-Za-z0-9_]+")
#: The request members that hold expressions.
_EXPRESSION_MEMBERS = (
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "UpdateExpression",
    "ProjectionExpression",
)


def unused_values(request: dict[str, Any]) -> list[str]:
    """The ``ExpressionAttributeValues`` keys none of ``request``'s expressions use."""
    values = request.get("ExpressionAttributeValues") or {}
    used: set[str] = set()
    for member in _EXPRESSION_MEMBERS:
        expression = request.get(member)
        if isinstance(expression, str):
            used.update(_VALUE_PLACEHOLDER.findall(expression))
    return sorted(set(values) - used)


def check_values_used(request: dict[str, Any]) -> None:
    """Raise moto's ``ValidationException`` for values no expression of ``request`` uses."""
    from moto.dynamodb.exceptions import MockValidationException

    unused = unused_values(request)
    if unused:
        raise MockValidationException(
            "Value provided in ExpressionAttributeValues unused in expressions: "
            f"keys: {{{', '.join(unused)}}}"
        )


def _checking_values(method: Any, *, transaction: bool = False) -> Any:
    def checked(handler: Any) -> Any:
        body = handler.body if isinstance(handler.body, dict) else {}
        if transaction:
            for entry in body.get("TransactItems") or []:
                for operation in entry.values() if isinstance(entry, dict) else ():
                    if isinstance(operation, dict):
                        check_values_used(operation)
        else:
            check_values_used(body)
        return method(handler)

    return checked


def patches() -> list[Patch]:
    """Check a transaction's size before moto's ``transact_write_items``."""
    from moto.dynamodb import models

    transact_write_items = models.DynamoDBBackend.transact_write_items

    def transact(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        check_transaction_size(backend, transact_items)
        return transact_write_items(backend, transact_items)

    from moto.dynamodb.responses import DynamoHandler

    return [
        Patch(models.DynamoDBBackend, "transact_write_items", transact),
        *(
            Patch(DynamoHandler, name, _checking_values(getattr(DynamoHandler, name)))
            for name in ("put_item", "delete_item", "query", "scan")
        ),
        Patch(
            DynamoHandler,
            "transact_write_items",
            _checking_values(DynamoHandler.transact_write_items, transaction=True),
        ),
    ]
