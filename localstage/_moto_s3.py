"""Inside the moto process: S3 object events go to a journal for localstage to deliver.

moto calls ``moto.s3.notifications.send_event`` wherever S3 emits an event
(PutObject, POST, CopyObject, CompleteMultipartUpload, DeleteObject(s), delete
markers, tagging, ACLs), inside the request, so the object's size, ETag and version
are exact even when the next request overwrites it. Each call is journaled (moto's
own delivery still runs and does nothing: localstage never configures notifications
on moto). The parent reads the journal at ``GET /_localstage/s3/journal?wait=<s>``
(a long poll that returns and clears it); the path never reaches moto.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

JOURNAL_PATH = "/_localstage/s3/journal"
_MAX_WAIT_SECONDS = 5.0
#: Nobody reads the journal when no bucket has notifications: keep it bounded.
_MAX_ENTRIES = 20_000

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ObjectEventJournal:
    """S3 events in the order moto emitted them, until the parent reads them."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._ready = threading.Condition()

    def append(self, entry: dict[str, Any]) -> None:
        with self._ready:
            if len(self._events) >= _MAX_ENTRIES:
                del self._events[: _MAX_ENTRIES // 10]
            self._events.append(entry)
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


def install() -> ObjectEventJournal:
    """Journal every S3 event moto emits."""
    from moto.s3 import notifications

    journal = ObjectEventJournal()
    send_event = notifications.send_event

    def journaled_send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        if key is not None:
            version = getattr(key, "version_id", None)
            journal.append(
                {
                    "eventName": str(getattr(event_name, "value", event_name)).removeprefix("s3:"),
                    "bucket": bucket.name,
                    "key": key.name,
                    "size": getattr(key, "size", None),
                    "eTag": str(getattr(key, "etag", "") or "").strip('"') or None,
                    "versionId": version if version not in (None, "null") else None,
                    "time": time.time(),
                    "sequencer": f"{time.time_ns():016X}",
                }
            )
        send_event(account_id, event_name, bucket, key)

    notifications.send_event = journaled_send_event
    return journal
