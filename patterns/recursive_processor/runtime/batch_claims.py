"""Recursive processor: what a hop does when its claim fails.

Another delivery holds the hop. If it is another event's (another request id), that
invocation finishes the hop. If it is an attempt of this very event (the same request
id), this delivery is one of two things: Lambda's retry of an attempt that died holding
the claim (out of memory, or its release failed too), which keeps the event's request id
("Duplicate invocations that return errors or timeout and that have the same request ID
indicate that the Lambda service retried the function",
https://repost.aws/knowledge-center/lambda-function-duplicate-invocations), or possibly
a copy of the event from Lambda's queue ("it's possible for it to receive the same event
from Lambda multiple times because the queue itself is eventually consistent",
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html),
which AWS does not say keeps the id. Answered "in progress", a dead attempt's event
would be used up and the run left RUNNING unseen; failed at once, a live attempt's copy
would go through Lambda's retries to the failure queue when the hop is long. So the
delivery waits while the claim will end within its own time: the holder's claim ends at
the holder's deadline, and a delivery that started after the holder (a retry always
does) outlives it. If the holder commits, the next look finds a duplicate; if its claim
ends without a commit, this delivery takes the hop.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from aws_lambda_powertools import Logger
from batch_hops import HopEnvironment
from batch_models import HopHeldByEarlierAttemptError, HopRequest, RunStatus, epoch_ms
from handler_kit import status_transitions

logger = Logger(child=True)

#: How long a delivery first waits for the earlier attempt holding its hop, and the
#: longest wait between two looks (each doubles the last).
FIRST_PAUSE_S = 0.25
MAX_PAUSE_S = 5.0


class ClaimHolder(Enum):
    """Who holds the hop, read again after a failed claim."""

    #: Another event's invocation, under a live claim: it finishes the hop.
    ANOTHER_EVENT = "another_event"
    #: An attempt of this event, under a live claim.
    THIS_EVENT = "this_event"
    #: Nobody: the claim ended (expired or given back), or the run moved on.
    NOBODY = "nobody"


def claim_holder(
    item: Mapping[str, Any] | None, request: HopRequest, *, now_ms: int, request_id: str
) -> ClaimHolder:
    """Who holds ``request``'s hop in ``item`` (the run as read after the failed claim)."""
    if (
        item is None
        or item.get("status") != RunStatus.RUNNING.value
        or int(item["hop"]) != request.hop
        or "lease_owner" not in item
        or int(item.get("lease_expires_ms", 0)) < now_ms
    ):
        return ClaimHolder.NOBODY
    if status_transitions.owned_by_request(str(item["lease_owner"]), request_id):
        return ClaimHolder.THIS_EVENT
    return ClaimHolder.ANOTHER_EVENT


def time_to_take_over(env: HopEnvironment) -> bool:
    """Whether a delivery that has waited still has time to run the hop: twice the safety
    margin, so that after its claim and reads it can still process a record."""
    return env.remaining_ms() >= 2 * env.settings.safety_margin_ms


def held_by_earlier_attempt(run_id: str, hop: int, reason: str) -> HopHeldByEarlierAttemptError:
    """The error that fails this delivery so that Lambda retries it later, whole."""
    logger.warning(
        "hop claimed by an earlier attempt of this event; failing so Lambda retries",
        run_id=run_id,
        hop=hop,
        reason=reason,
    )
    return HopHeldByEarlierAttemptError(
        f"hop {hop} of run {run_id} is claimed by an earlier attempt of this event: "
        f"{reason}; retry once its claim has ended"
    )


def pause_for_claim(
    env: HopEnvironment,
    request: HopRequest,
    *,
    holder: ClaimHolder,
    claim_ends_ms: int,
    last_s: float,
) -> float:
    """Wait before looking at the hop again; returns the pause made (the next doubles it).

    Raises ``HopHeldByEarlierAttemptError`` when waiting cannot help: this event's claim
    outlives this delivery (a copy that started before its holder), or the hop is free
    but too little time is left to run it (:func:`time_to_take_over`). Lambda then
    retries the event later with a whole timeout.
    """
    now_ms = epoch_ms(env.clock())
    remaining_ms = env.remaining_ms()
    if holder is ClaimHolder.THIS_EVENT and claim_ends_ms > now_ms + remaining_ms:
        raise held_by_earlier_attempt(request.run_id, request.hop, "its claim outlives this one")
    if holder is ClaimHolder.NOBODY and last_s and not time_to_take_over(env):
        raise held_by_earlier_attempt(
            request.run_id, request.hop, "its claim ended too late to run the hop"
        )
    if remaining_ms <= 0:
        raise held_by_earlier_attempt(request.run_id, request.hop, "no time is left to wait")
    # Every term is positive, so the loop always waits between two looks.
    pause_s = min(max(2 * last_s, FIRST_PAUSE_S), MAX_PAUSE_S, remaining_ms / 1000)
    if holder is ClaimHolder.THIS_EVENT:
        # Look again just after the claim ends, if that comes first.
        pause_s = min(pause_s, max(claim_ends_ms - now_ms, 0) / 1000 + 0.001)
    if not last_s:
        logger.info(
            "hop claimed by an earlier attempt of this event; waiting for it",
            run_id=request.run_id,
            hop=request.hop,
        )
    env.sleep(pause_s)
    return pause_s
