"""Inside the moto process: a journal of what moto emitted, read by the parent by long poll.

:mod:`localstage._moto_events` (PutEvents entries) and :mod:`localstage._moto_s3` (S3
object events) each keep one. The parent reads a journal at ``GET <path>?wait=<seconds>``
(a long poll that returns and clears it); the path never reaches moto. ``POST
<path>?wake=1`` ends a read waiting there without taking anything (a stopping reader).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

#: The longest a read waits for a first entry, whatever ``wait`` asks for.
MAX_WAIT_SECONDS = 5.0

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Journal:
    """Entries in the order they were appended, until the parent takes them.

    Parameters
    ----------
    path : str
        The HTTP path the parent reads the journal at.
    max_entries : int
        Without a reader (moto used without a stage) the journal is bounded: when it
        holds this many entries, the oldest are dropped before the next is appended.
    drop_when_full : int, optional
        How many of the oldest entries are dropped then (1: keep the newest
        ``max_entries``).

    Examples
    --------
    >>> journal = Journal("/_localstage/test/journal", max_entries=2)
    >>> for entry in ({"n": 1}, {"n": 2}, {"n": 3}):
    ...     journal.append(entry)
    >>> journal.take(0)
    [{'n': 2}, {'n': 3}]
    """

    def __init__(self, path: str, *, max_entries: int, drop_when_full: int = 1) -> None:
        self.path = path
        self._max_entries = max_entries
        self._drop_when_full = drop_when_full
        self._entries: list[dict[str, Any]] = []
        self._ready = threading.Condition()

    def append(self, entry: dict[str, Any]) -> None:
        """Journal one entry and wake a waiting reader."""
        with self._ready:
            if len(self._entries) >= self._max_entries:
                del self._entries[: self._drop_when_full]
            self._entries.append(entry)
            self._ready.notify_all()

    def take(self, wait: float) -> list[dict[str, Any]]:
        """Return and clear the journal, waiting up to ``wait`` seconds for a first entry."""
        with self._ready:
            if not self._entries:
                self._ready.wait(min(max(wait, 0.0), MAX_WAIT_SECONDS))
            taken, self._entries = self._entries, []
            return taken

    def wake(self) -> None:
        """End the wait of a reader now (it returns what the journal holds, maybe nothing)."""
        with self._ready:
            self._ready.notify_all()

    def middleware(self, app: WsgiApp) -> WsgiApp:
        """Serve the journal path; everything else goes to ``app``."""

        def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != self.path:
                return app(environ, start_response)
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            if query.get("wake"):
                self.wake()
                body = b"[]"
            else:
                wait = float((query.get("wait") or ["0"])[0])
                body = json.dumps(self.take(wait)).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]

        return call
