"""DynamoDB value conversion, error inspection and the conditional writes of the stores."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from handler_kit import ttl

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb] is installed, Any otherwise
    from mypy_boto3_dynamodb.client import DynamoDBClient

CONDITION_FAILED = "ConditionalCheckFailedException"
#: The attribute a conditional put adds to the item it creates: a value unique to the
#: call (:func:`put_unless_present`).
WRITE_TOKEN = "write_token"

_T = TypeVar("_T")

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def plain(value: Any) -> Any:
    """Convert DynamoDB values for JSON: Decimal to int/float, sets to sorted lists.

    Examples
    --------
    >>> plain({"n": Decimal("3"), "f": Decimal("0.5"), "s": {"b", "a"}})
    {'n': 3, 'f': 0.5, 's': ['a', 'b']}
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(item) for item in value)
    return value


def to_attribute_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Serialize plain Python values to DynamoDB attribute values (``{"S": ...}``)."""
    return {key: _SERIALIZER.serialize(value) for key, value in values.items()}


def from_attribute_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """Deserialize a low-level DynamoDB item to plain JSON-ready values (see :func:`plain`)."""
    return {key: plain(_DESERIALIZER.deserialize(value)) for key, value in item.items()}


def error_code(exc: ClientError) -> str:
    """The AWS error code of a client error, ``""`` if it has none."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_condition_failure(exc: ClientError) -> bool:
    """True if a conditional write or transaction condition was not met."""
    return error_code(exc) == CONDITION_FAILED


def unless_condition_fails(write: Callable[..., _T], **request: Any) -> _T | None:
    """``write(**request)``, a conditional write; None when its condition was not met.

    Raises
    ------
    botocore.exceptions.ClientError
        Any error other than a failed condition.
    """
    try:
        return write(**request)
    except ClientError as exc:
        if is_condition_failure(exc):
            return None
        raise


def expression_names(names: Iterable[str], *expressions: str) -> dict[str, str]:
    """``ExpressionAttributeNames`` for the ``#name`` placeholders the expressions use.

    Parameters
    ----------
    names : Iterable[str]
        Attribute names that may stand in the expressions as ``#name`` (reserved words
        such as ``status``).
    *expressions : str
        The update, condition or projection expressions.

    Returns
    -------
    dict[str, str]
        ``{"#name": "name"}`` for each name whose placeholder occurs in an expression.

    Examples
    --------
    >>> expression_names(("status", "result"), "SET #status = :done", "#status = :running")
    {'#status': 'status'}
    """
    return {
        f"#{name}": name
        for name in names
        if any(f"#{name}" in expression for expression in expressions)
    }


def update_if(
    client: DynamoDBClient,
    table_name: str,
    key: Mapping[str, Any],
    *,
    update: str,
    condition: str,
    values: Mapping[str, Any],
    names: Iterable[str] = (),
    return_new: bool = False,
) -> dict[str, Any] | None:
    """Run a conditional UpdateItem; None when the condition was not met.

    Parameters
    ----------
    client : DynamoDBClient
        A low-level boto3 DynamoDB client.
    table_name : str
        The table.
    key : Mapping[str, Any]
        The item's key as attribute values (``{"job_id": {"S": job_id}}``).
    update, condition : str
        ``UpdateExpression`` and ``ConditionExpression``.
    values : Mapping[str, Any]
        Plain values of the ``:placeholders`` (serialized here).
    names : Iterable[str], optional
        Attribute names that may be written ``#name`` (see :func:`expression_names`).
    return_new : bool, optional
        Return the whole item after the update (``ALL_NEW``) rather than ``{}``.

    Returns
    -------
    dict or None
        The new item as plain values (``{}`` unless ``return_new``), or None when the
        condition failed.

    Raises
    ------
    botocore.exceptions.ClientError
        Any error other than a failed condition.
    """
    kwargs = update_request(table_name, key, update, condition, values, names)
    if return_new:
        kwargs["ReturnValues"] = "ALL_NEW"
    response = unless_condition_fails(client.update_item, **kwargs)
    if response is None:
        return None
    return from_attribute_values(response.get("Attributes", {}))


def update_or_blocker(client: DynamoDBClient, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """Run a conditional UpdateItem (``request``, as :func:`update_request` builds it);
    None when it was applied, else the item that failed its condition (plain values,
    ``{}`` when there is none).

    The item comes back with the failure (``ReturnValuesOnConditionCheckFailure``), so
    the caller learns why without a read, which its role may not be allowed to make.
    """
    try:
        client.update_item(**request, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except ClientError as exc:
        if not is_condition_failure(exc):
            raise
        found: Mapping[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
        return from_attribute_values(found)
    return None


def update_request(
    table_name: str,
    key: Mapping[str, Any],
    update: str,
    condition: str,
    values: Mapping[str, Any],
    names: Iterable[str] = (),
) -> dict[str, Any]:
    """The parameters of a conditional UpdateItem (see :func:`update_if`)."""
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "Key": dict(key),
        "UpdateExpression": update,
        "ConditionExpression": condition,
    }
    if values:  # DynamoDB refuses an empty ExpressionAttributeValues
        kwargs["ExpressionAttributeValues"] = to_attribute_values(values)
    attribute_names = expression_names(names, update, condition)
    if attribute_names:
        kwargs["ExpressionAttributeNames"] = attribute_names
    return kwargs


def put_unless_present(
    client: DynamoDBClient, *, key_names: Sequence[str] = (), **request: Any
) -> bool:
    """A conditional ``PutItem`` (``Item`` in attribute values); False when its condition
    failed on an item another call wrote.

    True also when this very put had landed: the SDK retries a put whose reply was lost
    (a read timeout, a dropped connection, a 500 after the write), and the retry fails
    its condition on the item it wrote. The item carries :data:`WRITE_TOKEN`, a value
    unique to this call, which the failed check returns
    (``ReturnValuesOnConditionCheckFailure``, no read capacity consumed), so the two are
    told apart without a read.

    With ``key_names`` (the table's key attributes), a retry refused for a transaction in
    flight on the item (``TransactionConflictException``, which returns no item) is told
    apart the same way by a strongly consistent read of the key: True if the stored item
    is this put's.

    Raises
    ------
    botocore.exceptions.ClientError
        Any other error, ``TransactionConflictException`` included when the item is not
        this put's (or without ``key_names``).
    """
    token = {"S": uuid.uuid4().hex}
    item = {**request.pop("Item"), WRITE_TOKEN: token}
    try:
        client.put_item(**request, Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except ClientError as exc:
        if key_names and error_code(exc) == "TransactionConflictException":
            key = {name: item[name] for name in key_names}
            stored = client.get_item(
                TableName=request["TableName"], Key=key, ConsistentRead=True
            ).get("Item")
            if stored is not None and stored.get(WRITE_TOKEN) == token:
                return True
            raise
        if not is_condition_failure(exc):
            raise
        # botocore leaves the returned item in the error response.
        found: Mapping[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
        return found.get(WRITE_TOKEN) == token
    return True


def put_if_absent(
    client: DynamoDBClient,
    table_name: str,
    item: Mapping[str, Any],
    *,
    key_name: str,
    now: datetime | None = None,
    ttl_attribute: str = ttl.TTL_ATTRIBUTE,
) -> bool:
    """Create an item unless one with the same key exists; False if it does.

    A put whose reply was lost and that the SDK sent again is True
    (:func:`put_unless_present`).

    Parameters
    ----------
    client, table_name : DynamoDBClient, str
        A low-level boto3 DynamoDB client and the table.
    item : Mapping[str, Any]
        The item as plain values (serialized here).
    key_name : str
        The partition key attribute (``attribute_not_exists`` is checked on it).
    now : datetime, optional
        For a table with TTL: an item expired at ``now`` counts as absent and is
        replaced (see :mod:`handler_kit.ttl`). Without it any item blocks the put.
    ttl_attribute : str, optional
        The table's TTL attribute.

    Raises
    ------
    botocore.exceptions.ClientError
        Any error other than a failed condition.
    """
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "Item": to_attribute_values(item),
        "ConditionExpression": f"attribute_not_exists({key_name})",
    }
    if now is not None:
        kwargs["ConditionExpression"] = ttl.absent_condition(key_name, attribute=ttl_attribute)
        kwargs["ExpressionAttributeValues"] = to_attribute_values(ttl.condition_values(now))
    return put_unless_present(client, **kwargs)


def get_consistent(
    client: DynamoDBClient,
    table_name: str,
    key: Mapping[str, Any],
    *,
    now: datetime | None = None,
    ttl_attribute: str = ttl.TTL_ATTRIBUTE,
) -> dict[str, Any] | None:
    """Strongly consistent GetItem; the item as plain values, None if there is none.

    Numbers come back as int/float, not Decimal (see :func:`plain`). With ``now`` an
    item expired at ``now`` (TTL not yet applied) also reads as None.
    """
    item = client.get_item(TableName=table_name, Key=dict(key), ConsistentRead=True).get("Item")
    if item is None or (now is not None and ttl.is_expired(item, now, attribute=ttl_attribute)):
        return None
    return from_attribute_values(item)
