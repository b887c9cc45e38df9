"""Inside the moto process: SQS sends and receives in time independent of queue length.

moto's ``SendMessage``/``SendMessageBatch`` read ``queue.attributes`` (twice per message)
only to learn ``ContentBasedDeduplication``, and ``ReceiveMessage`` reads every
attribute three times per message it returns to learn the retention period; but
``attributes`` computes the approximate message counts too, each a pass over all
messages with two datetime-based clock reads per message: sending 1,000 subtasks took
tens of seconds and 10,000 never finished. Here, while a message is being sent, the
queue answers ``attributes`` with that one attribute, the retention check reads the
queue's retention period directly, and moto's SQS clock reads ``time.time()`` (what
its datetime arithmetic computes, about 20x faster). Results are unchanged: same
attributes for every other caller, same timestamps, same retention rule.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from localstage._moto_patch import Patch

_SENDING: contextvars.ContextVar[Any] = contextvars.ContextVar("sending_to", default=None)


def _unix_time(dt: Any = None) -> float:
    if dt is not None:
        return _ORIGINAL_UNIX_TIME(dt)
    return time.time()


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


_ORIGINAL_UNIX_TIME: Any = None


def patches() -> list[Patch]:
    """Patches of moto's SQS models."""
    global _ORIGINAL_UNIX_TIME
    from moto.sqs import models as typed_models

    models: Any = typed_models
    _ORIGINAL_UNIX_TIME = models.unix_time

    full_attributes = models.Queue.attributes.fget

    def attributes(queue: Any) -> dict[str, Any]:
        if _SENDING.get() is not queue:
            return dict(full_attributes(queue))
        if not queue.fifo_queue:
            return {}
        value = getattr(queue, "content_based_deduplication", None)
        return {
            "ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value
        }

    send_message = models.SQSBackend.send_message

    def send(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        token = _SENDING.set(backend.get_queue(queue_name))
        try:
            return send_message(backend, queue_name, *args, **kwargs)
        finally:
            _SENDING.reset(token)

    def retained(backend: Any, queue_name: str, message: Any) -> bool:
        # moto reads the retention period through GetQueueAttributes (every attribute,
        # three times) for each message it receives.
        retention = int(backend.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    return [
        Patch(models, "unix_time", _unix_time),
        Patch(models, "unix_time_millis", _unix_time_millis),
        Patch(models.Queue, "attributes", property(attributes)),
        Patch(models.SQSBackend, "send_message", send),
        Patch(models.SQSBackend, "is_message_valid_based_on_retention_period", retained),
    ]
