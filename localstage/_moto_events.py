"""Inside the moto process: PutEvents entries go to a journal instead of moto's delivery.

moto delivers events to a few target types itself (SQS, log groups) with its own
pattern matcher, and fails on others (Lambda). localstage delivers every event
itself (:mod:`localstage.sources.eventbridge`, one matcher and one delivery path for
every target type), so here moto's delivery is switched off and each accepted entry
is journaled as the event EventBridge would deliver. The parent reads the journal
at ``GET /_localstage/events/journal?wait=<seconds>`` (a long poll that returns and
clears it); the path never reaches moto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from localstage._moto_journal import Journal

JOURNAL_PATH = "/_localstage/events/journal"
#: Without a reader (moto used without a stage) the oldest entries are dropped.
MAX_JOURNAL_ENTRIES = 100_000


def _event_time(value: Any) -> str:
    """EventBridge's ``time``: the entry's ``Time`` (epoch seconds on the wire) or now."""
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromtimestamp(float(value), tz=UTC)
        except ValueError:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    else:
        moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def install() -> Journal:
    """Switch moto's own event delivery off and journal every accepted entry."""
    from moto.events.models import EventsBackend, Rule

    journal = Journal(JOURNAL_PATH, max_entries=MAX_JOURNAL_ENTRIES)
    put_events = EventsBackend.put_events

    def no_delivery(self: Any, original_event: Any, transform_input: bool = True) -> None:
        return None

    def journaled_put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = put_events(self, events)
        for entry, result in zip(events, results, strict=False):
            if "EventId" not in result:
                continue
            bus = self._normalize_event_bus_arn(entry.get("EventBusName"))
            try:
                detail = json.loads(entry["Detail"])
            except (KeyError, ValueError):
                continue
            journal.append(
                {
                    "bus": bus,
                    "event": {
                        "version": "0",
                        "id": result["EventId"],
                        "detail-type": entry["DetailType"],
                        "source": entry["Source"],
                        "account": self.account_id,
                        "time": _event_time(entry.get("Time")),
                        "region": self.region_name,
                        "resources": entry.get("Resources") or [],
                        "detail": detail,
                    },
                }
            )
        return results

    Rule.send_to_targets = no_delivery
    EventsBackend.put_events = journaled_put_events
    return journal
