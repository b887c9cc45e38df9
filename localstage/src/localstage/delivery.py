"""How often events reach their targets: once, or (at least) twice, to test idempotency.

AWS delivers every event source at least once: an S3 notification, an asynchronous
invocation, an EventBridge target, a Scheduler firing, a stream batch or an SQS message
can arrive twice, and sources that do not promise order can deliver them out of order.
By default localstage delivers each event once, in order; in ``duplicate`` mode every
source delivers every event twice, the second copy a random while after the first (so
out of order where AWS allows), which shows whether the handlers are idempotent.

The mode is read here only (``LocalStage(delivery=...)``, else ``$LOCALSTAGE_DELIVERY``);
each source asks the stage's :class:`DeliveryPolicy` how many copies to deliver.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

#: ``once`` (the default) or ``duplicate``.
DELIVERY_VARIABLE = "LOCALSTAGE_DELIVERY"
#: Seeds the reordering of ``duplicate`` mode, to replay one order.
SEED_VARIABLE = "LOCALSTAGE_DELIVERY_SEED"
ONCE = "once"
DUPLICATE = "duplicate"
MODES = (ONCE, DUPLICATE)
#: The latest a second copy comes after the first, in stage seconds: long enough to
#: land behind events sent after it, short enough (0.1 s at the tests' 90x) to cost
#: the test suites nothing.
MAX_REDELIVERY_DELAY_SECONDS = 10.0

_T = TypeVar("_T")


@dataclass
class DeliveryPolicy:
    """The stage's delivery mode and the randomness its reordering uses."""

    mode: str = ONCE
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"delivery mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        self._random = random.Random(self.seed)

    @classmethod
    def resolve(cls, mode: str | None = None) -> DeliveryPolicy:
        """``mode``, else ``$LOCALSTAGE_DELIVERY``, else ``once``.

        Examples
        --------
        >>> DeliveryPolicy.resolve("duplicate").copies
        2
        """
        chosen = mode or os.environ.get(DELIVERY_VARIABLE) or ONCE
        seed = os.environ.get(SEED_VARIABLE)
        return cls(mode=chosen.strip().lower(), seed=int(seed) if seed else None)

    @property
    def duplicates(self) -> bool:
        return self.mode == DUPLICATE

    @property
    def copies(self) -> int:
        """How many times each event is delivered."""
        return 2 if self.duplicates else 1

    def redelivery_delays(self) -> list[float]:
        """Stage seconds after the first delivery at which each extra copy is due."""
        if not self.duplicates:
            return []
        with self._lock:
            return [self._random.uniform(0, MAX_REDELIVERY_DELAY_SECONDS)]

    def jitter(self) -> float:
        """A random stage-time delay for a delivery of a source that duplicates by
        delivering every event twice itself (0 when not duplicating)."""
        delays = self.redelivery_delays()
        return delays[0] if delays else 0.0

    def unordered(self, items: Sequence[_T]) -> list[_T]:
        """``items`` in the order an unordered source may deliver them (shuffled when
        duplicating; as given otherwise, which is what tests of the normal mode expect)."""
        ordered = list(items)
        if self.duplicates:
            with self._lock:
                self._random.shuffle(ordered)
        return ordered
