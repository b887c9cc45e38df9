"""One-off schedules: what a client sees of a schedule, and the answer bodies' shapes.

:class:`ScheduleView` turns a stored item into a body; the TypedDicts are the bodies'
documented shapes (the OpenAPI document is generated from them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from handler_kit.status_transitions import attempts_of
from schedule_models import ScheduleStatus

# typing_extensions' TypedDict, not typing's: pydantic (blocks/openapi_docs.py, offline)
# turns only that one into JSON schema on Python < 3.12.
from typing_extensions import TypedDict

if TYPE_CHECKING:  # only annotations: the API shapes responses (event handler import)
    from handler_kit.responses import StoredResponse


class ScheduleTimes(TypedDict, total=False):
    """When a schedule reached each state after it was created: a key once it did."""

    fired_at: str
    completed_at: str
    failed_at: str
    cancelled_at: str


#: The keys of :class:`ScheduleTimes`, in the order a body lists them.
_TIMES: tuple[Literal["fired_at", "completed_at", "failed_at", "cancelled_at"], ...] = (
    "fired_at",
    "completed_at",
    "failed_at",
    "cancelled_at",
)


class ScheduleOutcome(TypedDict, total=False):
    """``result`` once DONE, ``error`` once FAILED (null if the record has none)."""

    result: dict[str, Any] | None
    error: dict[str, Any] | None


class ScheduleFields(ScheduleTimes, ScheduleOutcome):
    """What a client sees of a schedule (:meth:`ScheduleView.to_dict`)."""

    schedule_id: str
    status: ScheduleStatus
    at: str
    created_at: str
    updated_at: str
    attempts: int
    schedule_deleted_at: str | None


class ScheduleLinks(TypedDict):
    """Where a schedule is read and cancelled."""

    self: str


class ScheduleBody(ScheduleFields):
    """The body of every success answer of the API: the schedule and its link."""

    links: ScheduleLinks


@dataclass(frozen=True)
class ScheduleView:
    """What a client sees of a schedule.

    Attributes
    ----------
    item : dict
        The stored item (plain JSON types).
    undelivered : bool
        The record is PENDING past its delivery deadline: the Scheduler never got the
        event to the executor (it is in the schedule DLQ), so it reads FAILED.
    unfinished : bool
        The record is RUNNING past that deadline with its lease expired: the last
        attempt died, and neither a retry nor the cleanup recorded it (the cleanup's
        failure queue holds its record), so it reads FAILED.
    """

    item: Mapping[str, Any]
    undelivered: bool = False
    unfinished: bool = False

    @property
    def schedule_id(self) -> str:
        return str(self.item["schedule_id"])

    @property
    def status(self) -> ScheduleStatus:
        if self.undelivered or self.unfinished:
            return ScheduleStatus.FAILED
        return ScheduleStatus(self.item["status"])

    def to_dict(self) -> ScheduleFields:
        """JSON-ready body: status, the times it reached each state, result or error (a
        StrEnum serializes as its value)."""
        item = self.item
        times: ScheduleTimes = {}
        for when in _TIMES:
            if when in item:
                times[when] = item[when]
        outcome: ScheduleOutcome = {}
        if self.status is ScheduleStatus.DONE:
            outcome["result"] = item.get("result")
        if self.undelivered:
            outcome["error"] = {
                "code": "not_delivered",
                "message": "the schedule's event never reached the executor; it is in the "
                "schedule dead-letter queue",
            }
        elif self.unfinished:
            outcome["error"] = {
                "code": "not_completed",
                "message": "the task's last attempt ended without recording an outcome, and "
                "no retry can come any more",
            }
        elif self.status is ScheduleStatus.FAILED:
            outcome["error"] = item.get("error")
        # Pieces spliced in this order: the keys keep the order answers always had.
        return {
            "schedule_id": self.schedule_id,
            "status": self.status,
            "at": item["at"],
            "created_at": item["created_at"],
            "updated_at": item.get("updated_at", item["created_at"]),
            **times,
            "attempts": attempts_of(item),
            **outcome,
            "schedule_deleted_at": item.get("schedule_deleted_at"),
        }


@dataclass(frozen=True)
class Submission:
    """Outcome of :func:`submit_schedule`; ``created`` is False for an idempotent retry.

    ``response`` is the answer to send: the first answer, also for a retry.
    """

    view: ScheduleView
    created: bool
    response: StoredResponse


#: Builds the ``POST /schedules`` answer of a new schedule (the API owns its shape).
Render = Callable[[ScheduleView], "StoredResponse"]
