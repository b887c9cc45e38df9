"""DynamoDB value conversion and error inspection shared by the stores."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailedException"

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
