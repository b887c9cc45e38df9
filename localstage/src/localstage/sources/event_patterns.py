"""EventBridge event patterns: the matcher behind rules and event source mapping filters.

The same syntax serves EventBridge rules (``EventPattern``) and Lambda's
``FilterCriteria`` (the pattern is applied to the whole record: for a DynamoDB stream
record its top-level keys ``eventName``, ``dynamodb``, ``awsRegion``, ...).

Supported, as documented for EventBridge: exact values (strings, numbers compared as
numbers, booleans, ``null``), ``prefix``, ``suffix`` (both also with
``equals-ignore-case``), ``equals-ignore-case``, ``wildcard``, ``anything-but``
(values, ``prefix``, ``suffix``, ``wildcard``, ``equals-ignore-case``), ``numeric``
ranges, ``exists``, ``cidr`` (IPv4 and IPv6) and ``$or``. A field that is an array in
the event matches when any of its elements does. A malformed pattern raises
:class:`InvalidEventPatternError`, as the AWS APIs refuse it.

Examples
--------
>>> matches({"detail-type": ["AccountCreated"]}, {"detail-type": "AccountCreated"})
True
>>> matches({"detail": {"amount": [{"numeric": [">", 10]}]}}, {"detail": {"amount": 5}})
False
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

_MISSING = object()
_NUMERIC_OPERATORS = {"<", "<=", "=", ">=", ">"}


class InvalidEventPatternError(ValueError):
    """The pattern is not valid EventBridge pattern syntax."""


def parse(pattern: str | Mapping[str, Any]) -> dict[str, Any]:
    """A pattern from its JSON text (or a dict), checked for syntax."""
    value = json.loads(pattern) if isinstance(pattern, str) else dict(pattern)
    if not isinstance(value, dict):
        raise InvalidEventPatternError(f"an event pattern is a JSON object, got {value!r}")
    _check(value)
    return value


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Whether ``event`` (a JSON value) matches ``pattern`` (a parsed pattern)."""
    return _match_object(pattern, event)


# ---------------------------------------------------------------------- checking


def _check(pattern: Mapping[str, Any]) -> None:
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidEventPatternError("$or takes a list of at least two patterns")
            for branch in value:
                if not isinstance(branch, dict):
                    raise InvalidEventPatternError("each $or branch is an object")
                _check(branch)
        elif isinstance(value, dict):
            _check(value)
        elif isinstance(value, list):
            if not value:
                raise InvalidEventPatternError(f"{key}: an empty list matches nothing")
            for matcher in value:
                _check_matcher(key, matcher)
        else:
            raise InvalidEventPatternError(
                f"{key}: match values must be in a list or an object, got {value!r}"
            )


def _check_matcher(key: str, matcher: Any) -> None:
    if not isinstance(matcher, dict):
        if isinstance(matcher, list):
            raise InvalidEventPatternError(f"{key}: nested lists are not allowed")
        return
    if len(matcher) != 1:
        raise InvalidEventPatternError(f"{key}: a matcher has exactly one operator: {matcher}")
    ((operator, operand),) = matcher.items()
    if operator in ("prefix", "suffix"):
        if isinstance(operand, dict):
            if set(operand) != {"equals-ignore-case"}:
                raise InvalidEventPatternError(f"{key}: bad {operator} {operand}")
        elif not isinstance(operand, str):
            raise InvalidEventPatternError(f"{key}: {operator} takes a string")
    elif operator in ("equals-ignore-case", "wildcard"):
        if not isinstance(operand, str):
            raise InvalidEventPatternError(f"{key}: {operator} takes a string")
    elif operator == "exists":
        if not isinstance(operand, bool):
            raise InvalidEventPatternError(f"{key}: exists takes true or false")
    elif operator == "numeric":
        _numeric_bounds(key, operand)
    elif operator == "cidr":
        try:
            ipaddress.ip_network(operand, strict=False)
        except (TypeError, ValueError):
            raise InvalidEventPatternError(f"{key}: bad cidr {operand!r}") from None
    elif operator == "anything-but":
        if isinstance(operand, dict):
            if len(operand) != 1 or next(iter(operand)) not in (
                "prefix",
                "suffix",
                "wildcard",
                "equals-ignore-case",
            ):
                raise InvalidEventPatternError(f"{key}: bad anything-but {operand}")
        elif isinstance(operand, list) and any(isinstance(i, dict | list) for i in operand):
            raise InvalidEventPatternError(f"{key}: anything-but lists hold values")
    else:
        raise InvalidEventPatternError(f"{key}: unknown operator {operator!r}")


def _numeric_bounds(key: str, operand: Any) -> list[tuple[str, float]]:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise InvalidEventPatternError(f"{key}: numeric takes [op, n] or [op, n, op, n]")
    bounds: list[tuple[str, float]] = []
    for index in range(0, len(operand), 2):
        operator, number = operand[index], operand[index + 1]
        if operator not in _NUMERIC_OPERATORS or isinstance(number, bool):
            raise InvalidEventPatternError(f"{key}: bad numeric {operand}")
        if not isinstance(number, int | float):
            raise InvalidEventPatternError(f"{key}: numeric bounds are numbers")
        bounds.append((operator, float(number)))
    return bounds


# ---------------------------------------------------------------------- matching


def _match_object(pattern: Mapping[str, Any], event: Any) -> bool:
    if isinstance(event, list):
        return any(_match_object(pattern, item) for item in event)
    fields = event if isinstance(event, dict) else {}
    for key, expected in pattern.items():
        if key == "$or":
            if not any(_match_object(branch, event) for branch in expected):
                return False
            continue
        value = fields.get(key, _MISSING)
        if isinstance(expected, dict):
            if not _match_object(expected, {} if value is _MISSING else value):
                return False
        elif not _match_field(expected, value):
            return False
    return True


def _match_field(matchers: list[Any], value: Any) -> bool:
    if value is _MISSING:
        return any(isinstance(m, dict) and m.get("exists") is False for m in matchers)
    values = value if isinstance(value, list) else [value]
    return any(_match_value(matcher, item) for matcher in matchers for item in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, value: Any) -> bool:
    if _is_number(expected) and _is_number(value):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def _match_value(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    ((operator, operand),) = matcher.items()
    if operator == "exists":
        # EventBridge matches exists only against leaf values: an object (or an
        # array of objects) under the key does not exist for it.
        return operand is True and not isinstance(value, dict | list)
    if operator == "anything-but":
        return _anything_but(operand, value)
    if operator == "numeric":
        if not _is_number(value):
            return False
        return all(
            _compare(float(value), op, bound) for op, bound in _numeric_bounds("numeric", operand)
        )
    if not isinstance(value, str):
        return False
    if operator == "prefix":
        if isinstance(operand, dict):
            return value.lower().startswith(operand["equals-ignore-case"].lower())
        return value.startswith(operand)
    if operator == "suffix":
        if isinstance(operand, dict):
            return value.lower().endswith(operand["equals-ignore-case"].lower())
        return value.endswith(operand)
    if operator == "equals-ignore-case":
        return value.lower() == str(operand).lower()
    if operator == "wildcard":
        return _wildcard(operand, value)
    if operator == "cidr":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(operand, strict=False)
        except ValueError:
            return False
    return False


def _anything_but(operand: Any, value: Any) -> bool:
    if isinstance(operand, dict):
        ((operator, text),) = operand.items()
        if not isinstance(value, str):
            return True
        if operator == "prefix":
            return not value.startswith(text)
        if operator == "suffix":
            return not value.endswith(text)
        if operator == "wildcard":
            return not _wildcard(text, value)
        return value.lower() != str(text).lower()
    excluded = operand if isinstance(operand, list) else [operand]
    return not any(_equal(item, value) for item in excluded)


def _wildcard(pattern: str, value: str) -> bool:
    # Only * is special in EventBridge wildcards.
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, flags=re.S) is not None


def _compare(value: float, operator: str, bound: float) -> bool:
    if operator == "<":
        return value < bound
    if operator == "<=":
        return value <= bound
    if operator == "=":
        return value == bound
    if operator == ">=":
        return value >= bound
    return value > bound
