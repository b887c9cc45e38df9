"""The conditional status transitions the stores share: out of a lease, into an error;
and who holds a lease.

Each function returns the ``update``, ``condition`` and ``values`` of one
:func:`handler_kit.dynamodb.update_if` call (or a transaction's Update).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from handler_kit.clock import iso_timestamp

#: Condition of a transition only the delivery holding an item's lease may make.
LEASE_HELD_CONDITION = "#status = :running AND lease_owner = :owner"
#: The alternative of a claim's condition that lets a claim's own owner, unique per call
#: (:func:`lease_owner_for`), claim again: the SDK retries a claim whose reply was lost,
#: and that retry must find the claim it made, not another delivery's.
OWN_CLAIM_CONDITION = "(#status = :running AND lease_owner = :owner)"
#: A claim's ``ADD`` clause: the owner joins ``claimed_by``, the set of owners that
#: claimed the item. Adding an owner again changes nothing, where a counter
#: (``ADD attempts :one``) counted the SDK's retry of a claim as a second attempt.
CLAIMED_BY_ADD = "ADD claimed_by :claimant"


def lease_owner_for(request_id: str) -> str:
    """A lease owner unique to one call: the id of what it handles (a Lambda request id,
    which Lambda keeps for every retry of one asynchronous event, or an SQS message id,
    which every delivery of the message keeps) and a random part.

    Unique, so a claim may let its own owner claim again (the SDK's retry of a claim
    whose reply was lost) and no other invocation.
    """
    return f"{request_id}/{uuid.uuid4().hex[:12]}"


def claim_values(owner: str) -> dict[str, Any]:
    """The values :data:`OWN_CLAIM_CONDITION` and :data:`CLAIMED_BY_ADD` name."""
    return {":owner": owner, ":claimant": {owner}}


def attempts_of(item: Mapping[str, Any]) -> int:
    """How many deliveries claimed the item: the size of its ``claimed_by`` set, plus
    ``attempts``, the counter claims kept before the set (an item claimed before an
    update to this code still counts those claims).

    >>> attempts_of({"claimed_by": {"r1/a", "r2/b"}}), attempts_of({"attempts": 1}), attempts_of({})
    (2, 1, 0)
    """
    return len(item.get("claimed_by", ())) + int(item.get("attempts", 0))


def owned_by_request(owner: str, request_id: str) -> bool:
    """Whether ``owner`` (:func:`lease_owner_for`) is an invocation of ``request_id``.

    Examples
    --------
    >>> owned_by_request(lease_owner_for("req-1"), "req-1")
    True
    >>> owned_by_request(lease_owner_for("req-10"), "req-1")
    False
    """
    return owner.startswith(f"{request_id}/")


def lease_holder_update(
    set_clause: str,
    *,
    running: str,
    owner: str,
    now: datetime,
    values: Mapping[str, Any],
    also_remove: str = "",
    also_condition: str = "",
) -> dict[str, Any]:
    """``update``, ``condition`` and ``values`` of a transition out of RUNNING.

    It applies only while ``owner`` holds the lease (and ``also_condition`` holds, e.g.
    a deadline not yet passed), sets ``updated_at`` and removes the lease
    (``lease_owner``, ``lease_expires_epoch``, then ``also_remove``).
    """
    condition = LEASE_HELD_CONDITION + (f" AND {also_condition}" if also_condition else "")
    return {
        "update": (
            f"SET {set_clause}, updated_at = :now_iso"
            f" REMOVE lease_owner, lease_expires_epoch{also_remove}"
        ),
        "condition": condition,
        "values": {
            **values,
            ":running": running,
            ":owner": owner,
            ":now_iso": iso_timestamp(now),
        },
    }


def error_status_update(
    status: str,
    error: Mapping[str, Any],
    *,
    sources: Sequence[str],
    now: datetime,
    also_set: str = "",
    also_condition: str = "",
    values: Mapping[str, Any] | None = None,
    release_lease: bool = False,
) -> dict[str, Any]:
    """``update``, ``condition`` and ``values`` of a move to a status with an error.

    The move (to FAILED or TIMED_OUT, say) applies only from one of ``sources``; it
    writes ``#error`` and ``updated_at``.

    Parameters
    ----------
    status : str
        The status the item moves to.
    error : Mapping[str, Any]
        The item's ``error`` (``{"code", "message"}``).
    sources : Sequence[str]
        The statuses it may move from.
    now : datetime
        When (``updated_at``).
    also_set : str, optional
        More ``SET`` actions, e.g. ``failed_at = :now_iso``.
    also_condition : str, optional
        More of the condition, joined with ``AND``.
    values : Mapping[str, Any], optional
        The values of the placeholders ``also_set`` and ``also_condition`` use.
    release_lease : bool, optional
        Also remove the lease (``lease_owner``, ``lease_expires_epoch``).
    """
    placeholders = {f":from_{index}": source for index, source in enumerate(sources)}
    condition = (
        f"#status = {next(iter(placeholders))}"
        if len(placeholders) == 1
        else f"#status IN ({', '.join(placeholders)})"
    )
    if also_condition:
        condition = f"{condition} AND {also_condition}"
    extra = f", {also_set}" if also_set else ""
    release = " REMOVE lease_owner, lease_expires_epoch" if release_lease else ""
    return {
        "update": f"SET #status = :status, #error = :error{extra}, updated_at = :now_iso{release}",
        "condition": condition,
        "values": {
            **(values or {}),
            **placeholders,
            ":status": status,
            ":error": dict(error),
            ":now_iso": iso_timestamp(now),
        },
    }
