"""How a long-running part of the stage (a source, the activity watch) logs a problem."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from localstage.logs import LogSink


class ReportsErrors(Protocol):
    """A source that remembers the last problem it logged (tests and ``describe`` read it)."""

    last_error: str | None


def report_once(
    source: ReportsErrors, logs: LogSink, label: str, record: Mapping[str, Any]
) -> None:
    """Log a source's problem as one JSON line in ``label``'s log, a lasting one once.

    Parameters
    ----------
    source : ReportsErrors
        The source; its ``last_error`` becomes ``record["error"]``.
    logs : LogSink
        The stage's logs.
    label : str
        Whose log the line goes to (a function's label, ``EventBridge``).
    record : Mapping[str, Any]
        The line, with the problem's message under ``error``. A message equal to the
        last one (say a role without ``sqs:ReceiveMessage``, failing every poll) is
        not written again.

    Usage (needs a running stage or AWS, so not a doctest)::

        report_once(mapping, stage.logs, "Worker", {"error": "denied"})
    """
    message = str(record["error"])
    if message == source.last_error:
        return
    source.last_error = message
    logs.write(label, json.dumps(dict(record)))
