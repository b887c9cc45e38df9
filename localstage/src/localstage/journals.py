"""Reading a journal of the moto process (:mod:`localstage._moto_journal`) by long poll."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Callable
from typing import Any


def follow_journal(
    url: str,
    *,
    wait: float,
    stop: threading.Event,
    handle: Callable[[list[dict[str, Any]]], None],
    report: Callable[[Exception], None],
) -> None:
    """Until ``stop`` is set, read the journal at ``url`` and hand each batch to ``handle``.

    Each read waits up to ``wait`` seconds for a first entry. A failed read is given to
    ``report`` (unless the stage is stopping, which ends the loop) and retried after
    half a second; ``handle`` deals with its own failures.

    Usage (needs a running stage or AWS, so not a doctest)::

        follow_journal(endpoint + "/_localstage/activity", wait=5.0, stop=stop,
                       handle=print, report=print)
    """
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"{url}?wait={wait}", timeout=wait + 10) as response:
                entries = json.loads(response.read())
        except Exception as error:
            if stop.is_set():
                return
            report(error)
            stop.wait(0.5)
            continue
        handle(entries)


def wake_journal_reader(url: str) -> None:
    """End the long poll a reader of the journal at ``url`` waits in (it is stopping)."""
    request = urllib.request.Request(f"{url}?wake=1", data=b"", method="POST")
    # A moto process already gone ends the poll anyway.
    with contextlib.suppress(Exception), urllib.request.urlopen(request, timeout=5) as response:
        response.read()
