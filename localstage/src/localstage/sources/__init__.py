"""Event sources: what makes functions run besides a direct call.

Each module here registers a factory with :func:`event_source`; at boot the stage
calls every factory, which returns the sources it found in the deployment (for
example one poller per SQS event source mapping). A new source type (DynamoDB
streams, S3 notifications, schedules, ...) is a new module: nothing else changes.
An event source mapping no factory claims stops the boot with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

# Re-exported: the sources import them from here.
from localstage.reports import ReportsErrors as ReportsErrors
from localstage.reports import report_once as report_once
from localstage.stage_view import EventSource as EventSource

if TYPE_CHECKING:
    from localstage.deploy import Resource
    from localstage.runtime import FunctionRuntime
    from localstage.stage_view import StageView


class InvalidMappingError(ValueError):
    """An event source mapping AWS refuses at CreateEventSourceMapping: the boot stops,
    as the deployment would."""


SourceFactory = Callable[["StageView"], list[EventSource]]
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


def mappings_from(stage: StageView, service: str) -> list[tuple[Resource, FunctionRuntime]]:
    """The stage's event source mappings whose source is of ``service``, each with the
    function it runs: what a mapping source's factory starts from."""
    return [
        (mapping, stage.function(mapping.properties["FunctionName"]))
        for mapping in stage.deployment.resources("AWS::Lambda::EventSourceMapping")
        if mapping_service(mapping) == service
    ]
