"""DynamoDB TTL: an item past its expiry is absent, although reads still return it.

DynamoDB deletes expired items in the background, typically within two days of their
expiry; until then GetItem, Query and Scan return them and conditions such as
``attribute_not_exists`` still see them. AWS's advice is
to filter them out of reads and writes:

- https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html
  ("Working with expired items": a filter drops items whose TTL is equal to or less
  than the current time);
- https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html
  ("Items that have expired and not been deleted will still show up in reads, queries,
  and scans").

Every store whose items carry a TTL decides through this module, so that the API, the
workers and the conditional writes agree on one rule:

- the expiry is an epoch-seconds number (``expires_at``); an item without one, or with
  a non-number there, never expires (TTL ignores it too);
- an item is expired from the second its expiry names: ``expires_at <= now``, the
  guide's filter. The API reference calls an item expired once its value is *less*
  than the current time; treating the boundary second as expired as well only drops
  an item at most one second before DynamoDB may, and never keeps one it may delete;
- ``now`` comes from the caller's injected clock (:mod:`handler_kit.clock`), so tests
  put an expired item in moto (which never deletes one, like AWS within its delay) and
  move time instead of waiting.

The same comparison goes into conditional writes (:func:`absent_condition`,
:func:`unexpired_condition`), evaluated by DynamoDB against the item as it is at the
write: a create replaces an expired item atomically, and a transition never applies
to one, whatever a concurrent reader saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from handler_kit.clock import epoch_seconds

#: The TTL attribute of every table in this app (epoch seconds).
TTL_ATTRIBUTE = "expires_at"
#: Placeholder of "now" (epoch seconds) in the conditions built here.
NOW_VALUE = ":ttl_now"

_Item = TypeVar("_Item", bound=Mapping[str, Any])


def expiry_of(item: Mapping[str, Any], *, attribute: str = TTL_ATTRIBUTE) -> int | None:
    """The item's expiry in epoch seconds, or None if it has none that TTL would use.

    Takes plain items (``{"expires_at": 1700000000}``) and low-level ones
    (``{"expires_at": {"N": "1700000000"}}``).

    Examples
    --------
    >>> expiry_of({"expires_at": 1700000000}), expiry_of({"expires_at": {"N": "17"}})
    (1700000000, 17)
    >>> expiry_of({}), expiry_of({"expires_at": "soon"})
    (None, None)
    """
    value = item.get(attribute)
    if isinstance(value, Mapping):
        value = value.get("N")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def is_expired(item: Mapping[str, Any], now: datetime, *, attribute: str = TTL_ATTRIBUTE) -> bool:
    """True when ``item``'s TTL has passed at ``now`` (``expires_at <= now``).

    Parameters
    ----------
    item : Mapping[str, Any]
        A plain or low-level DynamoDB item.
    now : datetime
        The caller's clock reading.
    attribute : str, optional
        The table's TTL attribute.

    Examples
    --------
    >>> from datetime import UTC
    >>> now = datetime.fromtimestamp(100, UTC)
    >>> [is_expired({"expires_at": at}, now) for at in (99, 100, 101)]
    [True, True, False]
    >>> is_expired({}, now)
    False
    """
    expiry = expiry_of(item, attribute=attribute)
    return expiry is not None and expiry <= epoch_seconds(now)


def live(item: _Item | None, now: datetime, *, attribute: str = TTL_ATTRIBUTE) -> _Item | None:
    """``item`` unless it is missing or expired at ``now``: what every TTL read returns.

    Examples
    --------
    >>> from datetime import UTC
    >>> now = datetime.fromtimestamp(100, UTC)
    >>> live({"expires_at": 100}, now) is None, live({"expires_at": 101}, now)
    (True, {'expires_at': 101})
    """
    if item is None or is_expired(item, now, attribute=attribute):
        return None
    return item


def absent_condition(key_name: str, *, attribute: str = TTL_ATTRIBUTE) -> str:
    """Condition of a create: no item with this key, or only an expired one.

    Needs :func:`condition_values` among the expression's values.

    Examples
    --------
    >>> absent_condition("job_id")
    'attribute_not_exists(job_id) OR expires_at <= :ttl_now'
    """
    return f"attribute_not_exists({key_name}) OR {attribute} <= {NOW_VALUE}"


def unexpired_condition(*, attribute: str = TTL_ATTRIBUTE) -> str:
    """Condition (parenthesised) that the item has not expired; AND it to a transition's.

    Needs :func:`condition_values` among the expression's values.

    Examples
    --------
    >>> unexpired_condition()
    '(attribute_not_exists(expires_at) OR expires_at > :ttl_now)'
    """
    return f"(attribute_not_exists({attribute}) OR {attribute} > {NOW_VALUE})"


def condition_values(now: datetime) -> dict[str, int]:
    """The plain ``ExpressionAttributeValues`` the conditions above need.

    Examples
    --------
    >>> from datetime import UTC
    >>> condition_values(datetime.fromtimestamp(100.9, UTC))
    {':ttl_now': 100}
    """
    return {NOW_VALUE: epoch_seconds(now)}
