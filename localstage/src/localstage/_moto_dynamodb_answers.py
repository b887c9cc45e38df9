"""Inside the moto process: DynamoDB item answers dumped as JSON directly.

moto answers every DynamoDB action through its model-driven serializer, which looks
each member of each ``AttributeValue`` up under several name aliases. On the e2e suite
that was a fifth of moto's CPU (a ``Scan`` of a test-sized table: ~35 ms). The item
actions' results (:data:`ITEM_ACTIONS`) are plain JSON once moto has converted them
(``DynamoResult``): attribute values, counts, keys, consumed capacity. Here they are
dumped as they are, with what the serializer does to them: members whose value is
None are left out, and binary values (``B``, ``BS``, which moto hands over as bytes)
go out in base64. A result holding anything else (a datetime, an object), an error,
and every other action keep moto's serializer.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from localstage._moto_patch import Patch

#: Actions whose output shapes hold no timestamps and no members moto names otherwise.
ITEM_ACTIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)

#: The JSON protocol's content type for DynamoDB (its ``jsonVersion`` is 1.0).
CONTENT_TYPE = "application/x-amz-json-1.0"


class _NotPlainJsonError(Exception):
    """The result holds a value this dump does not serialize like moto does."""


def wire(value: Any) -> Any:
    """``value`` as moto's JSON serializer writes it, for plain results."""
    if isinstance(value, dict):
        return {key: wire(member) for key, member in value.items() if member is not None}
    if isinstance(value, list):
        return [wire(member) for member in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if value is None or isinstance(value, str | int | float):
        return value
    raise _NotPlainJsonError(type(value).__name__)


def patches() -> list[Patch]:
    """Answer :data:`ITEM_ACTIONS` without moto's serializer."""
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    serialized = DynamoHandler.serialized

    def dump(handler: Any, action_result: Any) -> Any:
        result = action_result.result
        if (
            type(action_result) is DynamoResult
            and isinstance(result, dict)
            and handler._get_action() in ITEM_ACTIONS
        ):
            try:
                body = json.dumps(wire(result))
            except _NotPlainJsonError:
                return serialized(handler, action_result)
            headers = {"Content-Type": CONTENT_TYPE}
            headers.update(handler.response_headers)
            return 200, headers, body
        return serialized(handler, action_result)

    return [Patch(DynamoHandler, "serialized", dump)]
