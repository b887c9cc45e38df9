"""Time: the production clock, and the timestamp formats every table and API uses."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

#: A source of "now" (``utc_now`` in production, a fake clock in tests).
Clock = Callable[[], datetime]
#: A ``time.sleep`` replacement (a fake sleep in tests).
Sleep = Callable[[float], None]


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
