"""Reading what a tiny stage's queues received, and waiting for it (imported by bare name,
like ``tiny``).

Tests see what the stage delivered through queues (destinations, dead letters, records a
handler sends); these helpers receive and delete, so a test sees each message once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from localstage.stage import LocalStage
from localstage.target import LocalTarget

T = TypeVar("T")


def wait_until(description: str, condition: Callable[[], T], timeout: float) -> T:
    """``condition()``'s first truthy value, polled every 0.1 s (real time) for ``timeout``
    seconds; an ``AssertionError`` naming ``description`` after that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {description}")


def queue_url(stage: LocalStage, logical_id: str) -> str:
    """The URL of queue ``logical_id`` of stack ``test-Tiny``."""
    return str(stage.deployment.stacks["test-Tiny"].resources[logical_id].attributes["QueueUrl"])


def take(stage: LocalStage, url: str, *, system_attributes: bool = False) -> list[dict[str, Any]]:
    """Receive (and delete) up to 10 messages the queue holds now, with their message
    attributes (or, if ``system_attributes``, their system attributes)."""
    sqs = stage.cloud.client("sqs")
    names = "MessageSystemAttributeNames" if system_attributes else "MessageAttributeNames"
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **{names: ["All"]})
    for message in messages.get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return list(messages.get("Messages", []))


def collect(stage: LocalStage, url: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """Wait for ``count`` messages in a queue and return them (deleted)."""
    received: list[dict[str, Any]] = []

    def enough() -> bool:
        received.extend(take(stage, url))
        return len(received) >= count

    LocalTarget(stage).wait_for(f"{count} messages", enough, timeout=timeout, interval=0.1)
    return received
