"""Stage time: a clock that tests and the demo can run faster than real time.

Everything in localstage that waits for *stage* time (SQS visibility timeouts of failed
batches, schedules, retry back-off) asks this clock; handler code keeps real time, so
a function's own timeout and ``get_remaining_time_in_millis()`` stay real.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Stage time running ``speed`` times faster than real time from the moment it starts.

    Examples
    --------
    >>> clock = Clock(speed=60)
    >>> clock.real_seconds(180)  # a 180 s visibility timeout lasts 3 real seconds
    3.0
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = float(speed)
        self._real_start = time.monotonic()
        self._epoch_start = time.time()
        self._stopped = threading.Event()

    def time(self) -> float:
        """Stage time as epoch seconds."""
        return self._epoch_start + (time.monotonic() - self._real_start) * self.speed

    def now(self) -> datetime:
        """Stage time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def real_seconds(self, stage_seconds: float) -> float:
        """How long ``stage_seconds`` of stage time last in real time."""
        return stage_seconds / self.speed

    def sleep(self, stage_seconds: float) -> bool:
        """Wait ``stage_seconds`` of stage time; False if the clock was stopped meanwhile."""
        return not self._stopped.wait(self.real_seconds(stage_seconds))

    def stop(self) -> None:
        """Wake every sleeper: the stage is shutting down."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()
