"""Event sources: what makes functions run besides a direct call.

Each module here registers a factory with :func:`event_source`; at boot the stage
calls every factory, which returns the sources it found in the deployment (for
example one poller per SQS event source mapping). A new source type (DynamoDB
streams, S3 notifications, schedules, ...) is a new module: nothing else changes.
An event source mapping no factory claims stops the boot with a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from localstage.deploy import Resource
    from localstage.logs import LogSink
    from localstage.stage import LocalStage


class EventSource(Protocol):
    """A running source of events; it must stop when asked."""

    description: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class ReportsErrors(Protocol):
    """A source that remembers the last problem it logged (tests and ``describe`` read it)."""

    last_error: str | None


def report_once(
    source: ReportsErrors, logs: LogSink, label: str, record: Mapping[str, Any]
) -> None:
    """Log a source's problem as one JSON line in ``label``'s log, a lasting one once.

    Parameters
    ----------
    source : ReportsErrors
        The source; its ``last_error`` becomes ``record["error"]``.
    logs : LogSink
        The stage's logs.
    label : str
        Whose log the line goes to (a function's label, ``EventBridge``).
    record : Mapping[str, Any]
        The line, with the problem's message under ``error``. A message equal to the
        last one (say a role without ``sqs:ReceiveMessage``, failing every poll) is
        not written again.

    Examples
    --------
    >>> report_once(mapping, stage.logs, "Worker", {"error": "denied"})  # doctest: +SKIP
    """
    message = str(record["error"])
    if message == source.last_error:
        return
    source.last_error = message
    logs.write(label, json.dumps(dict(record)))


SourceFactory = Callable[["LocalStage"], list[EventSource]]
FACTORIES: list[SourceFactory] = []
#: Services whose event source mappings a module handles (``sqs``, ``dynamodb``, ...).
MAPPING_SERVICES: set[str] = set()


def event_source(*mapping_services: str) -> Callable[[SourceFactory], SourceFactory]:
    """Register a factory; ``mapping_services`` are the ESM source services it claims."""

    def register(factory: SourceFactory) -> SourceFactory:
        FACTORIES.append(factory)
        MAPPING_SERVICES.update(mapping_services)
        return factory

    return register


def mapping_service(mapping: Resource) -> str:
    """The service of an event source mapping's source (``sqs``, ``dynamodb``, ``kinesis``)."""
    return str(mapping.properties.get("EventSourceArn", "")).split(":")[2]
