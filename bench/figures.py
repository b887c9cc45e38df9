"""One measured figure, its floor and its target."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

_Point = TypeVar("_Point")


@dataclass(frozen=True, kw_only=True)
class Figure:
    """A measured value compared with its target.

    Attributes
    ----------
    table : str
        Which table of the report it belongs to.
    name : str
        What was measured (one row).
    value : float
        The measurement, in ``unit``.
    unit : str
        ``s``, ``ms``, ``KB``, ``requests``...
    floor : float or None
        The same measurement of the least a thing can cost on this machine.
    target : str
        The target as text, e.g. ``<= 2x floor``.
    met : bool
        Whether the target is met.
    note : str
        Anything a reader needs to trust the number.
    x : float or None
        Where the figure lies on a scaling curve (events, object size...): figures of
        a table that have one are plotted as curves of ``value`` against ``x``.
    x_label : str
        What ``x`` is, with its unit (the plot's x axis label).
    series : str
        Which curve of the table's plot the figure belongs to.
    """

    table: str
    name: str
    value: float
    unit: str
    target: str
    met: bool
    floor: float | None = None
    note: str = ""
    x: float | None = None
    x_label: str = ""
    series: str = ""

    @classmethod
    def skipped(cls, *, table: str, name: str, unit: str, target: str, reason: str) -> Figure:
        """The row of a figure that was not measured: no value, target not met, and why.

        Every section reports what its time budget (or a failure) left unmeasured the
        same way, so the report still lists the row and says why it is empty.
        """
        return cls(
            table=table,
            name=name,
            value=math.nan,
            unit=unit,
            target=target,
            met=False,
            note=f"skipped: {reason}",
        )

    @property
    def measured(self) -> bool:
        """Whether there is a value (a :meth:`skipped` row has none)."""
        return not math.isnan(self.value)

    @property
    def verdict(self) -> str:
        """``pass``, ``short`` (measured, target missed) or ``not measured`` (skipped)."""
        if not self.measured:
            return "not measured"
        return "pass" if self.met else "short"

    @property
    def ratio(self) -> float | None:
        """``value / floor`` when there is a floor."""
        if self.floor is None or self.floor == 0:
            return None
        return self.value / self.floor


def unmeasured(
    points: Sequence[_Point],
    measured: int,
    *,
    table: str,
    name: Callable[[_Point], str],
    unit: str,
    target: str,
    reason: str,
) -> list[Figure]:
    """The skipped rows of the points a section's budget left unmeasured.

    A scaling section measures its points in order and stops when its budget runs
    out: ``points[measured:]`` get one :meth:`Figure.skipped` row each, named by
    ``name(point)``, so the report still lists every size it was meant to reach.
    """
    return [
        Figure.skipped(table=table, name=name(point), unit=unit, target=target, reason=reason)
        for point in points[measured:]
    ]


def fmt(value: float | None) -> str:
    """Three significant figures, or an em dash for no value."""
    if value is None or math.isnan(value):
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
