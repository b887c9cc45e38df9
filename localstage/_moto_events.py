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
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

JOURNAL_PATH = "/_localstage/events/journal"
_MAX_WAIT_SECONDS = 5.0
#: Without a reader (moto used without a stage) the oldest entries are dropped.
MAX_JOURNAL_ENTRIES = 100_000

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class EventJournal:
    """Events accepted by PutEvents, in order, until the parent reads them."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._ready = threading.Condition()

    def append(self, entry: dict[str, Any]) -> None:
        with self._ready:
            self._events.append(entry)
            del self._events[:-MAX_JOURNAL_ENTRIES]
            self._ready.notify_all()

    def take(self, wait: float) -> list[dict[str, Any]]:
        with self._ready:
            if not self._events:
                self._ready.wait(min(max(wait, 0.0), _MAX_WAIT_SECONDS))
            taken, self._events = self._events, []
            return taken

    def middleware(self, app: WsgiApp) -> WsgiApp:
        """Serve the journal path; everything else goes to ``app``."""

        def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != JOURNAL_PATH:
                return app(environ, start_response)
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            wait = float((query.get("wait") or ["0"])[0])
            body = json.dumps(self.take(wait)).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]

        return call


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


def install() -> EventJournal:
    """Switch moto's own event delivery off and journal every accepted entry."""
    from moto.events.models import EventsBackend, Rule

    journal = EventJournal()
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

    Rule.send_to_targets = no_delivery  # type: ignore[method-assign]
    EventsBackend.put_events = journaled_put_events  # type: ignore[method-assign]
    return journal
