"""Peak memory of a piece of work, measured where nothing else allocates.

``tracemalloc`` counts the allocations of every thread of the process. A pytest-xdist
worker that also runs the e2e suite keeps stage ``local``'s threads (event source
pollers, journal readers) alive between tests, and their allocations would count
towards the peak of whatever unit test traces next. The work therefore runs in a
forked child, where only the forking thread exists.
"""

from __future__ import annotations

import os
import pickle
import traceback
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


class TracedWorkError(RuntimeError):
    """The traced work raised in the child (its traceback is the message)."""


def traced_peak(work: Callable[[], _T]) -> tuple[_T, int]:
    """``work()``'s result and the peak of memory traced while it ran, in bytes.

    Examples
    --------
    >>> result, peak = traced_peak(lambda: len(bytearray(100_000)))
    >>> result, 100_000 <= peak < 200_000
    (100000, True)
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: trace, send (ok, result, peak) and leave at once
        os.close(read_end)
        try:
            tracemalloc.start()
            try:
                result = work()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            message = pickle.dumps((True, result, peak))
        except BaseException:
            message = pickle.dumps((False, traceback.format_exc(), 0))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(message)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        ok, result, peak = pickle.loads(pipe.read())
    os.waitpid(pid, 0)
    if not ok:
        raise TracedWorkError(result)
    return result, peak
