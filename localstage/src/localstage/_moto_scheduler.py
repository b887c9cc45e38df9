"""Inside the moto process: refuse the Scheduler requests AWS refuses.

moto stores any schedule it is given. EventBridge Scheduler checks each request against
its API model and refuses what does not fit with ``ValidationException`` (400):

- every member's constraints in the model botocore ships (the API Reference's "Length
  Constraints", "Pattern", "Valid Range" and "Valid Values"): a name is 1-64 characters
  of ``[0-9a-zA-Z-_.]``, ``RetryPolicy.MaximumRetryAttempts`` 0-185,
  ``MaximumEventAgeInSeconds`` 60-86400, ``FlexibleTimeWindow.MaximumWindowInMinutes``
  1-1440, ``ActionAfterCompletion`` ``NONE`` or ``DELETE``... botocore itself checks only
  required members, types and minimums before it sends;
- the schedule expression (``CreateSchedule``, "ScheduleExpression"): ``at(yyyy-mm-ddThh:mm:ss)``
  with a real date and time, ``rate(value unit)`` with a positive value and a unit of
  ``minute(s)``, ``hour(s)`` or ``day(s)``, or ``cron(fields)`` with six fields;
- ``ScheduleExpressionTimezone``: a time zone name;
- ``FlexibleTimeWindow``: ``FLEXIBLE`` needs ``MaximumWindowInMinutes``.

The error message is AWS's: ``1 validation error detected: Value 'a/b' at 'name' failed
to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from localstage._moto_patch import Patch

#: The responses' methods checked, by the Scheduler operation they answer.
OPERATIONS = {
    "create_schedule": "CreateSchedule",
    "update_schedule": "UpdateSchedule",
    "get_schedule": "GetSchedule",
    "delete_schedule": "DeleteSchedule",
}
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_RATE = re.compile(r"rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\(\s*(\S+(?:\s+\S+){5})\s*\)")


def patches() -> list[Patch]:
    """Check each Scheduler request before moto's response method handles it."""
    from moto.scheduler.responses import EventBridgeSchedulerResponse

    return [
        Patch(
            EventBridgeSchedulerResponse,
            method,
            _checked(getattr(EventBridgeSchedulerResponse, method), operation),
        )
        for method, operation in OPERATIONS.items()
    ]


def _checked(answer: Callable[[Any], str], operation: str) -> Callable[[Any], str]:
    def checked(self: Any) -> str:
        problems = request_problems(operation, request_parameters(self.uri, self.body))
        if problems:
            from moto.scheduler.exceptions import ValidationException

            raise ValidationException(validation_message(problems))
        return answer(self)

    return checked


def request_parameters(uri: str, body: str | bytes | None) -> dict[str, Any]:
    """A request's members by their model names: the JSON body, the name from the path
    (``/schedules/{Name}``) and the ``groupName`` query member."""
    parts = urlsplit(uri)
    parameters: dict[str, Any] = json.loads(body) if body else {}
    if not isinstance(parameters, dict):
        parameters = {}
    parameters["Name"] = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    group = parse_qs(parts.query).get("groupName")
    if group:
        parameters["GroupName"] = group[0]
    return parameters


def validation_message(problems: list[str]) -> str:
    """AWS's wording: ``N validation error(s) detected: a; b``."""
    count = len(problems)
    return f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)


def request_problems(operation: str, parameters: dict[str, Any]) -> list[str]:
    """What Scheduler would refuse in ``parameters`` of ``operation``, in AWS's words."""
    problems = list(_constraint_problems(_input_shape(operation), parameters, ""))
    expression = parameters.get("ScheduleExpression")
    if isinstance(expression, str) and not valid_expression(expression):
        problems.append(f"Invalid Schedule Expression {expression}.")
    zone = parameters.get("ScheduleExpressionTimezone")
    if isinstance(zone, str) and not _known_zone(zone):
        problems.append(f"Invalid ScheduleExpressionTimezone {zone}.")
    window = parameters.get("FlexibleTimeWindow")
    window = window if isinstance(window, dict) else {}
    if window.get("Mode") == "FLEXIBLE" and window.get("MaximumWindowInMinutes") is None:
        problems.append("MaximumWindowInMinutes is required when Mode is FLEXIBLE.")
    return problems


def valid_expression(expression: str) -> bool:
    """Whether ``expression`` is an ``at()``, ``rate()`` or ``cron()`` Scheduler accepts
    the form of.

    >>> [valid_expression(e) for e in ("at(2026-02-28T10:00:00)", "at(2026-02-30T10:00:00)")]
    [True, False]
    >>> [valid_expression(e) for e in ("rate(5 minutes)", "rate(0 minutes)", "cron(0 12 * * ? *)")]
    [True, False, True]
    """
    at = _AT.fullmatch(expression)
    if at:
        try:
            datetime.fromisoformat(at.group(1))
        except ValueError:
            return False
        return True
    return bool(_RATE.fullmatch(expression) or _CRON.fullmatch(expression))


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@cache
def _input_shape(operation: str) -> Any:
    import botocore.session

    model = botocore.session.get_session().get_service_model("scheduler")
    return model.operation_model(operation).input_shape


def _constraint_problems(shape: Any, value: Any, path: str) -> Iterator[str]:
    """Each member of ``value`` that breaks its model constraint (max, pattern, enum,
    range), named as AWS names it (the first letter in lower case, dots between)."""
    if shape is None or value is None:
        return
    metadata = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                segment = name[0].lower() + name[1:]
                member_path = f"{path}.{segment}" if path else segment
                yield from _constraint_problems(member, value[name], member_path)
        return
    if kind == "list" and isinstance(value, list):
        if "max" in metadata and len(value) > metadata["max"]:
            yield _problem(
                value, path, f"Member must have length less than or equal to {metadata['max']}"
            )
        for item in value:
            yield from _constraint_problems(shape.member, item, f"{path}.member")
        return
    if kind == "string" and isinstance(value, str):
        if "max" in metadata and len(value) > metadata["max"]:
            yield _problem(
                value, path, f"Member must have length less than or equal to {metadata['max']}"
            )
        if "pattern" in metadata and not re.fullmatch(metadata["pattern"], value):
            yield _problem(
                value,
                path,
                f"Member must satisfy regular expression pattern: {metadata['pattern']}",
            )
        if shape.enum and value not in shape.enum:
            yield _problem(
                value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            )
        return
    if kind in ("integer", "long") and isinstance(value, int):
        if "max" in metadata and value > metadata["max"]:
            yield _problem(
                value, path, f"Member must have value less than or equal to {metadata['max']}"
            )
        if "min" in metadata and value < metadata["min"]:
            yield _problem(
                value, path, f"Member must have value greater than or equal to {metadata['min']}"
            )


def _problem(value: Any, path: str, constraint: str) -> str:
    return f"Value '{value}' at '{path}' failed to satisfy constraint: {constraint}"
