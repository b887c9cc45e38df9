"""One-off schedules: parsing of what comes in (the requested time, the POST body,
ids, the executor's event and the cleanup's destination record) and the fingerprints
and ids derived from a request.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from handler_kit import http_requests
from handler_kit.clock import InvalidTimestampError, iso_timestamp, parse_timestamp
from handler_kit.errors import PayloadTooLargeError
from handler_kit.fingerprints import request_fingerprint
from handler_kit.http_requests import describe_validation_error
from pydantic import ValidationError
from schedule_models import (
    MAX_PAYLOAD_BYTES,
    SCHEDULE_ARN_RE,
    SCHEDULE_ID_NAMESPACE,
    DestinationRecord,
    InvalidDestinationRecordError,
    InvalidInvocationError,
    InvalidScheduleTimeError,
    ScheduledInvocation,
    ScheduleRequest,
)

# --------------------------------------------------------------------------- time


def requested_instant(text: str) -> datetime:
    """``at`` as the instant it names, in UTC (not rounded).

    Raises
    ------
    InvalidScheduleTimeError
        Not ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` with ``Z`` or ``±HH:MM``
        (``clock.parse_timestamp``), or no real date and time.
    """
    try:
        return parse_timestamp(text).astimezone(UTC)
    except InvalidTimestampError:
        # One message for every refusal: the format requires the timezone, because a
        # time without one is ambiguous.
        raise InvalidScheduleTimeError(
            "at must be an ISO-8601 date and time YYYY-MM-DDTHH:MM:SS[.ffffff] with a timezone "
            "(Z or an offset such as +01:00: without one it is ambiguous), e.g. "
            "2025-03-14T10:00:00Z, naming a real date and time"
        ) from None


def _round_up_to_second(moment: datetime, *, horizon_seconds: int) -> datetime:
    """``moment`` rounded up to a whole second (an ``at()`` expression has no fraction).

    Raises
    ------
    InvalidScheduleTimeError
        The next second is past the year 9999.
    """
    if not moment.microsecond:
        return moment
    try:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    except OverflowError:
        raise InvalidScheduleTimeError(
            f"at must be at most {horizon_seconds} seconds ahead"
        ) from None


def parse_fire_time_form(text: str, *, horizon_seconds: int) -> datetime:
    """``at`` in UTC, rounded up to a whole second, whatever the time now.

    EventBridge Scheduler's ``at()`` takes whole seconds, so ``…:00.2Z`` is scheduled for
    ``…:01Z``; the Scheduler then invokes within that minute ("60 second precision").

    Raises
    ------
    InvalidScheduleTimeError
        Not ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` with ``Z`` or ``±HH:MM``
        (``clock.parse_timestamp``), no real date and time, or past the year 9999 in UTC.
    """
    return _round_up_to_second(requested_instant(text), horizon_seconds=horizon_seconds)


def parse_fire_time(text: str, *, now: datetime, horizon_seconds: int) -> datetime:
    """Validate ``at`` and return it in UTC, rounded up to a whole second.

    The instant asked for must be after ``now`` and at most the horizon ahead; the
    second it fires in may then end up to a second past the horizon.

    Parameters
    ----------
    text : str
        ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` with ``Z`` or ``±HH:MM`` (``clock.parse_timestamp``).
    now : datetime
        The current time.
    horizon_seconds : int
        The latest accepted time is ``now`` + this.

    Raises
    ------
    InvalidScheduleTimeError
        Unparseable, without a timezone, not in the future, or beyond the horizon.
    """
    # The window bounds the time the client asked for, not its rounded-up fire time: a
    # time earlier in the current second has passed, though its next second has not.
    requested = requested_instant(text)
    if requested <= now:
        raise InvalidScheduleTimeError(f"at must be in the future (now is {iso_timestamp(now)})")
    if requested - now > timedelta(seconds=horizon_seconds):
        raise InvalidScheduleTimeError(
            f"at must be at most {horizon_seconds} seconds ahead"
            f" (latest {iso_timestamp(now + timedelta(seconds=horizon_seconds))})"
        )
    return _round_up_to_second(requested, horizon_seconds=horizon_seconds)


def at_expression(moment: datetime) -> str:
    """The Scheduler expression of a one-time schedule, in UTC: ``at(2025-03-14T10:00:00)``."""
    return f"at({moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


# --------------------------------------------------------------------------- parsing


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the stored and hashed form of a payload."""
    # allow_nan=False: the strict parser already refuses NaN; never write it either.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def parse_schedule_request(raw: bytes) -> ScheduleRequest:
    """Validate a ``POST /schedules`` body (the shape; :func:`parse_fire_time` the time).

    Raises
    ------
    InvalidRequestError
        Empty body, malformed JSON, missing, extra or wrongly typed fields.
    PayloadTooLargeError
        The payload's canonical JSON is larger than ``MAX_PAYLOAD_BYTES``.
    """
    missing = "request body is required: a JSON object with an 'at' field"
    request = http_requests.parse_request(ScheduleRequest, raw, missing=missing)
    if len(canonical_json(request.payload).encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"payload exceeds {MAX_PAYLOAD_BYTES} bytes as JSON")
    return request


def parse_schedule_id(value: str) -> str:
    """``value`` as a canonical lower-case UUID (InvalidRequestError if it is not one)."""
    return http_requests.parse_uuid(value, "schedule_id")


def parse_schedule_arn(arn: str) -> tuple[str, str]:
    """Split a schedule ARN into (group, name).

    Raises
    ------
    ValueError
        If ``arn`` is not a schedule ARN.
    """
    match = SCHEDULE_ARN_RE.fullmatch(arn)
    if match is None:
        raise ValueError(f"not an EventBridge Scheduler schedule ARN: {arn[:200]!r}")
    return match["group"], match["name"]


def parse_invocation(event: Any) -> ScheduledInvocation:
    """Validate the executor's event.

    Raises
    ------
    InvalidInvocationError
        If it is not a substituted target input of this pattern, or the ARN's schedule
        name is not the ``schedule_id``.
    """
    try:
        invocation = ScheduledInvocation.model_validate(event)
    except ValidationError as exc:
        raise InvalidInvocationError(
            f"invalid scheduled invocation: {describe_validation_error(exc)}"
        ) from None
    _, name = parse_schedule_arn(invocation.schedule_arn)
    if name.lower() != invocation.schedule_id.lower():
        raise InvalidInvocationError("schedule_arn does not name the schedule of schedule_id")
    return invocation


def parse_destination_record(event: Any) -> DestinationRecord:
    """Validate the cleanup's event.

    Raises
    ------
    InvalidDestinationRecordError
        If it is not a Lambda destination record.
    """
    try:
        return DestinationRecord.model_validate(event)
    except ValidationError as exc:
        raise InvalidDestinationRecordError(
            f"invalid destination record: {describe_validation_error(exc)}"
        ) from None


def request_hash(request: ScheduleRequest) -> str:
    """Fingerprint of the normalized request (``handler_kit.fingerprints``)."""
    return request_fingerprint(request)


def schedule_id_for(caller: str, idempotency_key: str | None) -> str:
    """Schedule id (and name): uuid5 over (caller, key) when a key is given, else uuid4."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    # The key is printable ASCII, so the newline cannot be forged from inside it.
    return str(uuid.uuid5(SCHEDULE_ID_NAMESPACE, f"{caller}\n{idempotency_key}"))
