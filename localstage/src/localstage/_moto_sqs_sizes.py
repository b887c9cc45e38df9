"""Inside the moto process: a message's size counts its attributes, as SQS counts it.

SQS's ``MessageAttributeValue``: "All parts of the message attribute, including Name,
Type, and Value, are part of the message size restriction (1 MiB or 1,048,576 bytes)"
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html),
and ``SendMessageBatch``: "The maximum allowed individual message size and the maximum
total payload size (the sum of the individual lengths of all of the batched messages)
are both 1 MiB 1,048,576 bytes"
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html).
moto measures the body alone, in characters, so a message whose attributes (or
multi-byte characters) take it past the limit is queued by moto and refused by SQS.
Here the size is the body's UTF-8 bytes plus, for each attribute, the UTF-8 bytes of its
name and data type and its string value's UTF-8 bytes or binary value's bytes, checked
against the queue's ``MaximumMessageSize`` (``InvalidParameterValue``, moto's wording)
and, summed over a batch, against 1 MiB (``BatchRequestTooLong``).
"""

from __future__ import annotations

from typing import Any

from localstage._moto_patch import Patch


def _byte_length(value: Any) -> int:
    """Bytes of a string (UTF-8) or of a binary value; 0 for an absent one."""
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray):
        return len(value)
    return len(str(value).encode("utf-8"))


def message_size(body: str, attributes: dict[str, Any] | None) -> int:
    """The size SQS holds against its limits: the body and every part of every attribute.

    Parameters
    ----------
    body
        The message body.
    attributes
        ``MessageAttributes`` as sent: ``{name: {"DataType", "StringValue" | "BinaryValue"}}``.

    Returns
    -------
    int
        Bytes: the body's UTF-8, plus each attribute's name, data type and value.
    """
    size = _byte_length(body)
    for name, value in (attributes or {}).items():
        size += _byte_length(name) + _byte_length(value.get("DataType"))
        size += _byte_length(value.get("StringValue")) + _byte_length(value.get("BinaryValue"))
    return size


def check_message_size(queue: Any, body: str, attributes: dict[str, Any] | None) -> int:
    """Raise moto's ``InvalidParameterValue`` for a message over the queue's maximum.

    Returns
    -------
    int
        The message's size (:func:`message_size`), for a batch's total.
    """
    from moto.sqs.exceptions import InvalidParameterValue

    size = message_size(body, attributes)
    limit = int(queue.maximum_message_size)
    if size > limit:
        # SQS's and moto's wording for a body over the limit.
        raise InvalidParameterValue(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{limit} bytes."
        )
    return size


def check_batch_size(queue: Any, entries: dict[str, dict[str, Any]]) -> None:
    """Refuse a batch with an entry over the queue's maximum, or over 1 MiB in all.

    The whole batch is refused, nothing queued: moto validates every entry before it
    sends any, and so does this check (whether SQS fails only the oversized entry when
    the queue's ``MaximumMessageSize`` is under 1 MiB is not documented).
    """
    from moto.sqs.constants import MAXIMUM_MESSAGE_LENGTH
    from moto.sqs.exceptions import BatchRequestTooLong

    sizes = [
        check_message_size(queue, entry["MessageBody"], entry.get("MessageAttributes"))
        for entry in entries.values()
    ]
    if sum(sizes) > MAXIMUM_MESSAGE_LENGTH:
        raise BatchRequestTooLong(sum(sizes))


def patches() -> list[Patch]:
    """Check sizes before moto's ``send_message`` and ``send_message_batch``."""
    from moto.sqs import models

    send_message = models.SQSBackend.send_message
    send_message_batch = models.SQSBackend.send_message_batch

    def send(backend: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        attributes = kwargs.get("message_attributes", args[0] if args else None)
        check_message_size(backend.get_queue(queue_name), message_body, attributes)
        return send_message(backend, queue_name, message_body, *args, **kwargs)

    def send_batch(backend: Any, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
        check_batch_size(backend.get_queue(queue_name), entries)
        return send_message_batch(backend, queue_name, entries)

    return [
        Patch(models.SQSBackend, "send_message", send),
        Patch(models.SQSBackend, "send_message_batch", send_batch),
    ]
