"""Inside the moto process: SQS receipt handles found by lookup, not by scanning the queue.

moto finds the message of a receipt handle (``DeleteMessage``, ``DeleteMessageBatch``,
``ChangeMessageVisibility``) by testing every message of the queue, each test building
a new list of that message's handles, and a delete then rebuilds the queue's list: a
fan-out of 1,000 subtasks delivered twice spent about a twentieth of moto's CPU there,
and the cost grows with the square of the queue's length. Here every handle moto gives
a message (current and past: moto accepts both) maps to its message, so the message is
found at once; the queue's own list still decides whether it holds that message (and
moto's scan decides for a handle not indexed).
Answers are unchanged: an unknown handle, or one of another queue's message, is
``ReceiptHandleIsInvalid``; a deleted message's handle deletes nothing, silently.
"""

from __future__ import annotations

import weakref
from typing import Any

from localstage._moto_patch import Patch

#: Every receipt handle moto has given a message still alive, to that message.
_MESSAGES_BY_HANDLE: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def _position_of(queue: Any, receipt_handle: str) -> int | None:
    """Where in ``queue``'s messages the one that ever had ``receipt_handle`` is, or None.

    A message of another queue is not this queue's. (moto's ``Message`` has no ``__eq__``,
    so the list's own search, in C, compares identities as moto's scan does.)
    """
    message = _MESSAGES_BY_HANDLE.get(receipt_handle)
    if message is not None:
        try:
            position: int = queue._messages.index(message)
            return position
        except ValueError:
            pass
    # Not indexed (a message received while the patch was off) or not this queue's:
    # moto's own scan decides, on this error path only.
    for position, held in enumerate(queue._messages):
        if held.had_receipt_handle(receipt_handle):
            return position
    return None


def patches() -> list[Patch]:
    """Patches of moto's SQS receipt-handle lookups."""
    from moto.sqs import models as typed_models
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

    models: Any = typed_models
    mark_received = models.Message.mark_received

    def received(message: Any, *args: Any, **kwargs: Any) -> None:
        mark_received(message, *args, **kwargs)
        _MESSAGES_BY_HANDLE[message.receipt_handle] = message

    def delete_message(queue: Any, receipt_handle: str) -> None:
        if receipt_handle in queue.deleted_messages:
            return  # already deleted: moto (and SQS) accept it again
        position = _position_of(queue, receipt_handle)
        if position is None:
            raise ReceiptHandleIsInvalid()
        message = queue._messages[position]
        queue.pending_messages.discard(message)
        queue.deleted_messages.update(message.all_receipt_handles)
        # A new list, as moto makes: a caller may be iterating over the old one.
        kept = queue._messages.copy()
        del kept[position]
        queue._messages = kept

    def change_message_visibility(
        backend: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        queue = backend.get_queue(queue_name)
        position = _position_of(queue, receipt_handle)
        if position is None:
            raise ReceiptHandleIsInvalid
        message = queue._messages[position]
        # The rest as moto does it, word for word.
        visibility_timeout_msec = int(visibility_timeout) * 1000
        given_visibility_timeout = models.unix_time_millis() + visibility_timeout_msec
        if given_visibility_timeout - message.sent_timestamp > 43200 * 1000:
            raise InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. "
                "Reason: Total VisibilityTimeout for the message is beyond the limit "
                "[43200 seconds]"
            )
        message.change_visibility(visibility_timeout)
        if message.visible and message in queue.pending_messages:
            queue.pending_messages.remove(message)

    return [
        Patch(models.Message, "mark_received", received),
        Patch(models.Queue, "delete_message", delete_message),
        Patch(models.SQSBackend, "change_message_visibility", change_message_visibility),
    ]
