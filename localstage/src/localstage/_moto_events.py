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
from localstage._moto_patch import Patch

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


#: EventBridge's limit on the entries of one PutEvents request (bytes, as counted by
#: :func:`entry_size`): 1 MB since January 2026, 256 KB before.
PUT_EVENTS_LIMIT = 1024 * 1024


def entry_size(entry: dict[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge counts it (its "entry size" page):
    14 bytes for ``Time``, the UTF-8 bytes of ``Source``, ``DetailType``, ``Detail``
    and each of ``Resources``."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key) or "").encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [])


def new_journal() -> Journal:
    """The journal :func:`patches` fills (the moto process serves it as middleware)."""
    return Journal(JOURNAL_PATH, max_entries=MAX_JOURNAL_ENTRIES)


def patches(journal: Journal) -> list[Patch]:
    """Switch moto's own event delivery off and journal every accepted entry."""
    from moto.events.exceptions import ValidationException
    from moto.events.models import EventsBackend, Rule

    put_events = EventsBackend.put_events

    def no_delivery(self: Any, original_event: Any, transform_input: bool = True) -> None:
        return None

    def journaled_put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # moto accepts entries of any size; EventBridge refuses a request whose entries
        # add up to more than its limit (1 MB since January 2026).
        if sum(entry_size(entry) for entry in events) > PUT_EVENTS_LIMIT:
            raise ValidationException("Total size of the entries in the request is over the limit.")
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

    return [
        Patch(Rule, "send_to_targets", no_delivery),
        Patch(EventsBackend, "put_events", journaled_put_events),
    ]
