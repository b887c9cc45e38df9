"""Wake the stage's pollers when moto has just taken a write that may give them work.

Lambda's pollers answer a new message or stream record within moments. Polling moto
that often for every queue, stream and the schedules costs a stage a sixth of a core
while it is idle. Instead the moto process notes which services took a write (an SQS
send, a DynamoDB write, a schedule change: :mod:`localstage._moto_activity`), one thread
here long-polls that note, and each poller waits on its own :class:`Wakeup` between
polls. The pollers still poll every few seconds when nothing wakes them, and set a
wakeup for when a message they returned becomes visible again.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from localstage._moto_activity import ACTIVITY_PATH
from localstage.journals import follow_journal
from localstage.logs import LogSink
from localstage.reports import report_once

#: How long one read of the activity note waits for a first entry.
LONG_POLL_SECONDS = 5.0


class Wakeup:
    """One poller's wake-up call: set by activity of its service, by a timer or to stop.

    Examples
    --------
    >>> wakeup = Wakeup()
    >>> wakeup.set()
    >>> wakeup.wait(10.0)  # returns at once: it was set
    True
    >>> wakeup.wait(0.01)  # waiting cleared it
    False
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def set_after(self, seconds: float) -> None:
        """Set it ``seconds`` from now (when a message becomes visible again, say)."""
        timer = threading.Timer(seconds, self._event.set)
        timer.daemon = True
        timer.start()

    def wait(self, timeout: float) -> bool:
        """Wait until set or ``timeout`` seconds passed; True if set. Clears it either way."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken


class ActivityWatch:
    """Reads the moto process's activity note and sets the wakeups of those services.

    Usage (needs a running stage or AWS, so not a doctest)::

        watch = ActivityWatch(stage.logs)
        wakeup = watch.wakeup("sqs")  # before or after start
        watch.start("http://127.0.0.1:5000")
    """

    def __init__(self, logs: LogSink) -> None:
        self._logs = logs
        self._wakeups: dict[str, list[Wakeup]] = defaultdict(list)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def wakeup(self, service: str) -> Wakeup:
        """A new wakeup, set whenever ``service`` (sqs, dynamodb, scheduler) may have work."""
        wakeup = Wakeup()
        with self._lock:
            self._wakeups[service].append(wakeup)
        return wakeup

    def start(self, endpoint_url: str) -> None:
        self._thread = threading.Thread(
            target=follow_journal,
            args=(f"{endpoint_url}{ACTIVITY_PATH}",),
            kwargs={
                "wait": LONG_POLL_SECONDS,
                "stop": self._stop,
                "handle": self._wake,
                "report": self._note,
            },
            daemon=True,
            name="activity",
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=LONG_POLL_SECONDS + 5)
            self._thread = None

    def _wake(self, entries: list[dict[str, Any]]) -> None:
        with self._lock:
            woken = [w for entry in entries for w in self._wakeups.get(entry["service"], [])]
        for wakeup in woken:
            wakeup.set()

    def _note(self, error: Exception) -> None:
        # The pollers still poll on their own, only less often: log it (once) and go on.
        record = {"type": "localstage.activity", "error": f"reading the activity note: {error}"}
        report_once(self, self._logs, "Activity", record)
