"""One-off schedules: the executor's run of a fired schedule and the cleanup after it."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from handler_kit.clock import Clock, iso_timestamp, utc_now
from handler_kit.status_transitions import attempts_of
from schedule_models import (
    TERMINAL_STATUSES,
    CleanupOutcome,
    DestinationRecord,
    ForeignScheduleError,
    InvalidDestinationRecordError,
    RunOutcome,
    ScheduledInvocation,
    ScheduleStatus,
    TaskFailedError,
)
from schedule_parsing import canonical_json, parse_schedule_arn
from schedule_store import Schedules, ScheduleStore

logger = Logger(child=True)


# --------------------------------------------------------------------------- executor


def simulate_task(invocation: ScheduledInvocation) -> dict[str, Any]:
    """The stand-in for real work: digest the payload, or fail if asked to.

    Raises
    ------
    TaskFailedError
        ``outcome == "fail"``: every attempt fails, so the run ends FAILED.
    """
    if invocation.outcome == "fail":
        raise TaskFailedError(
            f"task of schedule {invocation.schedule_id} failed (outcome=fail requested)"
        )
    text = canonical_json(invocation.payload).encode("utf-8")
    return {
        "payload_sha256": hashlib.sha256(text).hexdigest(),
        "payload_bytes": len(text),
        "scheduled_time": iso_timestamp(invocation.scheduled_time),
        "execution_id": invocation.execution_id,
    }


def _resolve_unclaimable(store: ScheduleStore, schedule_id: str, now: datetime) -> RunOutcome:
    item = store.get(schedule_id, now=now)
    if item is None:
        logger.warning("no record for this schedule; nothing to run", schedule_id=schedule_id)
        return RunOutcome.MISSING
    status = ScheduleStatus(item["status"])
    if status in TERMINAL_STATUSES:
        logger.info("schedule already finished", schedule_id=schedule_id, status=status.value)
        return RunOutcome.DUPLICATE
    # RUNNING under a live lease (or PENDING again after a race): another delivery is on it.
    logger.info("another delivery holds the schedule", schedule_id=schedule_id)
    return RunOutcome.IN_PROGRESS


def run_scheduled_task(
    store: ScheduleStore,
    invocation: ScheduledInvocation,
    *,
    lease_owner: str,
    remaining_ms: int,
    clock: Clock = utc_now,
) -> RunOutcome:
    """Run one delivery of a fired schedule.

    Parameters
    ----------
    store : ScheduleStore
        The schedule table.
    invocation : ScheduledInvocation
        The parsed event.
    lease_owner : str
        Identifies this attempt (the Lambda request id).
    remaining_ms : int
        Remaining time of the invocation; the lease lasts that long, so it cannot expire
        while this attempt may still be working.
    clock : callable
        Injected time.

    Raises
    ------
    TaskFailedError
        The task failed: the lease is released (the record is PENDING again) so Lambda's
        retry runs it again; after the last retry the on-failure destination records
        FAILED.
    """
    now = clock()
    schedule_id = invocation.schedule_id.lower()
    item = store.claim(
        schedule_id,
        lease_owner=lease_owner,
        lease_expires_epoch=math.ceil(now.timestamp() + remaining_ms / 1000),
        now=now,
        execution_id=invocation.execution_id,
    )
    if item is None:
        return _resolve_unclaimable(store, schedule_id, now)
    logger.info("schedule claimed", schedule_id=schedule_id, attempts=attempts_of(item))
    try:
        result = simulate_task(invocation)
    except TaskFailedError as exc:
        error = {"code": "task_failed", "message": str(exc)}
        store.release(schedule_id, lease_owner=lease_owner, error=error, now=clock())
        raise
    if store.complete(schedule_id, lease_owner=lease_owner, result=result, now=clock()):
        return RunOutcome.COMPLETED
    logger.warning("lost the lease while working; result discarded", schedule_id=schedule_id)
    return RunOutcome.DISCARDED


# --------------------------------------------------------------------------- cleanup


def _failure_details(record: DestinationRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """(error, failure record) of an on-failure destination record."""
    response = record.response_payload if isinstance(record.response_payload, dict) else {}
    error_type = str(response.get("errorType") or record.request_context.condition)
    error_message = str(
        response.get("errorMessage") or f"the executor gave up: {record.request_context.condition}"
    )[:1000]
    error = {"code": "task_failed", "type": error_type, "message": error_message}
    failure = {
        "condition": record.request_context.condition,
        "approximate_invoke_count": record.request_context.approximate_invoke_count,
        "request_id": record.request_context.request_id,
        "function_arn": record.request_context.function_arn,
        "timestamp": iso_timestamp(record.timestamp),
        "function_error": (record.response_context.function_error or "")
        if record.response_context
        else "",
        "error_type": error_type,
        "error_message": error_message,
        # JSON text: the event may hold floats, which DynamoDB numbers do not take.
        "event": canonical_json(record.request_payload),
    }
    return error, failure


def schedule_of(record: DestinationRecord, group_name: str) -> tuple[str, str]:
    """(schedule id, schedule name) of the event the executor was invoked with.

    Raises
    ------
    InvalidDestinationRecordError
        The request payload names no schedule (not an event a schedule delivered).
    ForeignScheduleError
        The schedule is in another group (this pattern may not touch it).
    """
    payload = record.request_payload if isinstance(record.request_payload, dict) else {}
    arn = payload.get("schedule_arn")
    try:
        group, name = parse_schedule_arn(arn if isinstance(arn, str) else "")
    except ValueError as exc:
        raise InvalidDestinationRecordError(f"request payload names no schedule: {exc}") from None
    if group != group_name:
        raise ForeignScheduleError(f"schedule {name} is in group {group}, not {group_name}")
    schedule_id = payload.get("schedule_id")
    return (schedule_id.lower() if isinstance(schedule_id, str) else name.lower()), name


def clean_up(
    store: ScheduleStore, schedules: Schedules, record: DestinationRecord, *, now: datetime
) -> tuple[CleanupOutcome, bool]:
    """Delete the fired schedule; on a failure record also record FAILED.

    Every step is idempotent, so a duplicate or retried delivery changes nothing.

    Returns
    -------
    (CleanupOutcome, bool)
        Whether the schedule was still there, and whether this call recorded FAILED.

    Raises
    ------
    InvalidDestinationRecordError, ForeignScheduleError
        The record names no schedule of this pattern (it ends in the failure queue).
    ScheduleStillRunningError
        A failure record met a delivery still holding the schedule: Lambda retries the
        cleanup (the steps before were idempotent).
    """
    schedule_id, name = schedule_of(record, schedules.group_name)
    deleted = schedules.delete(name)
    outcome = CleanupOutcome.DELETED if deleted else CleanupOutcome.ALREADY_GONE
    # Noted before the failure, which may defer the cleanup (ScheduleStillRunningError).
    if not store.record_schedule_deleted(schedule_id, now):
        logger.info("no record for the deleted schedule", schedule_id=schedule_id)
    recorded_failure = False
    if not record.succeeded:
        error, failure = _failure_details(record)
        recorded_failure = store.mark_failed(schedule_id, error=error, failure=failure, now=now)
        if not recorded_failure:
            logger.info("failure record for a schedule no longer pending", schedule_id=schedule_id)
    return outcome, recorded_failure
