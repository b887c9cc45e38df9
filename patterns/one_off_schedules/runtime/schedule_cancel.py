"""One-off schedules: cancelling a schedule, ``DELETE /schedules/{id}``."""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from schedule_models import (
    ScheduleNotCancellableError,
    ScheduleNotFoundError,
    ScheduleSettings,
    ScheduleStatus,
)
from schedule_service import schedule_view
from schedule_store import Schedules, ScheduleStore
from schedule_views import ScheduleView

logger = Logger(child=True)


def cancel_schedule(
    store: ScheduleStore,
    schedules: Schedules,
    schedule_id: str,
    *,
    now: datetime,
    settings: ScheduleSettings,
) -> ScheduleView:
    """Cancel a pending schedule (``DELETE /schedules/{id}``); repeating it is harmless.

    The record turns CANCELLED before the schedule is deleted, so an executor firing in
    between finds it cancelled and does nothing.

    Raises
    ------
    ScheduleNotFoundError
        No such schedule.
    ScheduleNotCancellableError
        It already ran, is running or failed (also as a PENDING record past its
        delivery deadline, which reads FAILED ``not_delivered``).
    """
    store.cancel(schedule_id, now, undelivered_after_seconds=settings.undelivered_after_seconds)
    item = store.get(schedule_id, now=now)
    if item is None:
        raise ScheduleNotFoundError(f"schedule {schedule_id} not found")
    # The status GET answers, not the stored one: PENDING past the deadline is FAILED.
    status = schedule_view(item, now=now, settings=settings).status
    if status is not ScheduleStatus.CANCELLED:
        state = "has fired" if "fired_at" in item else f"is {status.value}"
        raise ScheduleNotCancellableError(
            f"schedule {schedule_id} {state} and can no longer be cancelled"
        )
    # Deleted on every DELETE of a cancelled record, also one that says it is deleted
    # already: a keyed POST racing the cancel may have created the schedule after the
    # cancel's own delete (and failed to delete it again), and a repeated DELETE is then
    # the client's way to remove it. A schedule already gone counts as deleted.
    try:
        schedules.delete(schedule_id)
    except (BotoCoreError, ClientError):
        # Still cancelled: if the schedule fires, the executor finds CANCELLED and does
        # nothing, and ActionAfterCompletion deletes it; a repeated DELETE tries again.
        logger.warning("DeleteSchedule failed on cancel", exc_info=True)
        return ScheduleView(item)
    if not item.get("schedule_deleted_at"):
        store.record_schedule_deleted(schedule_id, now)
        item = store.get(schedule_id, now=now) or item
    return ScheduleView(item)
