"""The one background thread of a polling source, and how it starts and stops.

The SQS poller, the Scheduler, EventBridge's and S3's journal readers each run one
daemon thread until the stage stops them: stopping sets an event the loop watches,
wakes the loop if it waits on a :class:`~localstage.activity.Wakeup` or in a journal's long
poll, and joins the
thread for a bounded time (a loop in a long poll answers within it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from localstage.journals import follow_journal, wake_journal_reader

if TYPE_CHECKING:
    from localstage.activity import Wakeup


class SourceLoop:
    """A source's daemon thread ``name``: :meth:`start` it once, :meth:`stop` it once.

    The loop it runs ends when :attr:`stopping` is set; :meth:`stop` waits for it at most
    ``join_seconds``.
    """

    def __init__(self, name: str, *, join_seconds: float, wakeup: Wakeup | None = None) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._join_seconds = join_seconds
        self._wakeup = wakeup
        self._thread: threading.Thread | None = None
        self._journal_url: str | None = None

    def start(self, run: Callable[[], None]) -> None:
        """Run ``run`` in the source's thread."""
        self._thread = threading.Thread(target=run, daemon=True, name=self.name)
        self._thread.start()

    def follow(
        self,
        journal_url: str,
        *,
        wait: float,
        handle: Callable[[list[dict[str, Any]]], None],
        report: Callable[[Exception], None],
    ) -> None:
        """Read the journal at ``journal_url`` in the source's thread until stopped (see
        :func:`~localstage.journals.follow_journal`)."""
        self._journal_url = journal_url
        self.start(
            lambda: follow_journal(
                journal_url, wait=wait, stop=self.stopping, handle=handle, report=report
            )
        )

    def stop(self) -> None:
        """Ask the loop to end, wake it, and wait (bounded) for its thread."""
        self.stopping.set()
        if self._wakeup is not None:
            self._wakeup.set()
        if self._journal_url is not None and self._thread is not None:
            wake_journal_reader(self._journal_url)
        if self._thread is not None:
            self._thread.join(timeout=self._join_seconds)
