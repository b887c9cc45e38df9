"""Publishing account events to the stack's EventBridge bus (domain events)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from account_models import AccountEvent, PublishFailedError, parse_iso_timestamp

if TYPE_CHECKING:  # typed when boto3-stubs[events] is installed, Any otherwise
    from mypy_boto3_events.client import EventBridgeClient


def domain_event_entry(event: AccountEvent, *, bus_name: str, source: str) -> dict[str, Any]:
    """The EventBridge entry of ``event``: a pure function of the stored event.

    Redelivering a stream record therefore publishes an identical entry (same
    ``event_id`` = account:version, same time and detail), which a consumer keyed on
    account + version counts once.
    """
    return {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": event.type.value,
        "Time": parse_iso_timestamp(event.occurred_at),
        "Resources": [],
        "Detail": json.dumps(event.to_dict(), separators=(",", ":"), sort_keys=True),
    }


class DomainEventPublisher:
    """Publishes account events to the stack's EventBridge bus.

    Parameters
    ----------
    client : EventBridgeClient
        A boto3 EventBridge client.
    bus_name, source : str
        Target bus and the ``source`` of every entry.
    """

    def __init__(self, client: EventBridgeClient, bus_name: str, source: str) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source

    def publish(self, event: AccountEvent) -> None:
        """Put one domain event.

        Raises
        ------
        PublishFailedError
            If EventBridge reports the entry as failed.
        """
        entry = domain_event_entry(event, bus_name=self._bus_name, source=self._source)
        response = self._client.put_events(Entries=[entry])
        if response.get("FailedEntryCount", 0):
            failed = response["Entries"][0]
            raise PublishFailedError(
                f"{event.event_id}: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
            )
