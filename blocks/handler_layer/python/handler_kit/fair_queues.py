"""Who a queued message is for: the tenant key SQS fair queues schedule by.

On a standard queue, a message's ``MessageGroupId`` names its tenant. When one tenant
holds a large share of the messages in flight or of the consumers' time (one caller's
job of 10,000 subtasks), SQS delivers the other tenants' waiting messages first, so a
caller's backlog delays that caller's own work, not everyone's. Nothing else changes:
a standard queue keeps no order within a group and still delivers at least once.

The tenant here is the signed caller as ``handler_kit.http_requests.caller`` names it
(the identity that scopes Idempotency-Keys): one tenant per IAM role rather than per
role session, since the session name is the caller's to choose and a client allowed to
assume a role could otherwise split one backlog over as many sessions as it likes and
pass for that many quiet tenants.
"""

from __future__ import annotations

import hashlib

#: Hex digits kept of the digest: 128 bits, well under SQS's 128-character limit.
GROUP_ID_LENGTH = 32


def message_group_id(caller: str) -> str:
    """The ``MessageGroupId`` of ``caller``'s messages: its tenant, digested.

    A digest, not the identity itself: an IAM ARN may be longer than the 128
    characters SQS allows, and the digest uses only characters it accepts.

    Examples
    --------
    >>> message_group_id("alice") != message_group_id("bob")
    True
    >>> len(message_group_id("arn:aws:sts::123456789012:assumed-role/" + "r" * 2000))
    32
    """
    return hashlib.sha256(caller.encode()).hexdigest()[:GROUP_ID_LENGTH]


def group_fields(group_id: str | None) -> dict[str, str]:
    """The ``MessageGroupId`` member of a send request (none without a group id).

    Examples
    --------
    >>> group_fields("abc"), group_fields(None)
    ({'MessageGroupId': 'abc'}, {})
    """
    return {"MessageGroupId": group_id} if group_id else {}
