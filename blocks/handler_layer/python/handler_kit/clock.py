"""Time: the production clock, and the timestamp formats every table and API uses."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

#: A source of "now" (``utc_now`` in production, a fake clock in tests).
Clock = Callable[[], datetime]
#: A ``time.sleep`` replacement (a fake sleep in tests).
Sleep = Callable[[float], None]

# The one timestamp format clients may send: ``YYYY-MM-DDTHH:MM:SS``, an optional
# fraction of 1 to 6 digits, and a required zone, ``Z`` or ``+HH:MM``/``-HH:MM``. Matched
# with ``fullmatch`` (``$`` would let a trailing newline through), because
# ``datetime.fromisoformat`` reads ``"...Z\x00junk"`` as valid and accepts other
# spellings (a space for ``T``, no seconds, ``+0100``) that other readers may not.
_TIMESTAMP_RE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,6}))?"
    r"(?:(?P<utc>Z)|(?P<sign>[+-])(?P<hours>\d{2}):(?P<minutes>[0-5]\d))",
    re.ASCII,
)


class InvalidTimestampError(ValueError):
    """A timestamp is not in the accepted format or names no real moment."""


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the production clock)."""
    return datetime.now(UTC)


def epoch_seconds(moment: datetime) -> int:
    """Whole epoch seconds of ``moment`` (floor), the unit of every ``*_epoch`` attribute.

    Examples
    --------
    >>> epoch_seconds(datetime(1970, 1, 1, 0, 0, 1, 999_000, tzinfo=UTC))
    1
    """
    return math.floor(moment.timestamp())


def iso_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z`` suffix.

    Examples
    --------
    >>> iso_timestamp(datetime(2025, 1, 1, 12, 0, tzinfo=UTC))
    '2025-01-01T12:00:00.000Z'
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse a client's timestamp: the whole text must be the documented format.

    The format is ``YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)``: an upper-case ``T``,
    seconds, an optional fraction of up to 6 digits, and a timezone. Nothing may
    precede or follow it (no whitespace, NUL or newline).

    Parameters
    ----------
    text : str
        The timestamp as the client sent it.

    Returns
    -------
    datetime
        An aware datetime in the given offset (not converted to UTC).

    Raises
    ------
    InvalidTimestampError
        If the text is not exactly that format, names no real date, time or offset
        (``2026-02-30``, ``24:00:00``, ``+24:00``), or an instant that is not within
        years 1-9999 once in UTC.

    Examples
    --------
    >>> parse_timestamp("2026-12-03T18:46:14.5+01:00").isoformat()
    '2026-12-03T18:46:14.500000+01:00'
    >>> parse_timestamp("2026-12-03T18:46:14Z\\x00junk")
    Traceback (most recent call last):
    ...
    handler_kit.clock.InvalidTimestampError: not YYYY-MM-DDTHH:MM:SS[.ffffff] with Z or +HH:MM
    """
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        raise InvalidTimestampError("not YYYY-MM-DDTHH:MM:SS[.ffffff] with Z or +HH:MM")
    fraction = (match["fraction"] or "").ljust(6, "0")
    try:
        if match["utc"]:
            zone = UTC
        else:
            offset = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"]))
            zone = timezone(-offset if match["sign"] == "-" else offset)
        # Only digits reach fromisoformat here: it checks the calendar and clock ranges.
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}")
    except ValueError:
        raise InvalidTimestampError("names no real date, time or timezone offset") from None
    moment = moment.replace(tzinfo=zone)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+00:01 or 9999-12-31T23:59:59-01:00: no instant in UTC,
        # so nothing could compare, store or fingerprint it (an unhandled error, a 5xx).
        raise InvalidTimestampError("names an instant outside years 1-9999 in UTC") from None
    return moment
