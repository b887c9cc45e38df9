"""Fan-out/fan-in worker and reducer logic: count each subtask once, then reduce.

Plain Python on ``fan_out_store``: ``fan_out_worker.py`` and ``fan_out_reducer.py``
parse events, call these functions and turn their outcomes into metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from fan_out_models import (
    MAX_LISTED_FAILURES,
    TERMINAL_STATUSES,
    FanOutSettings,
    JobAggregate,
    JobStatus,
    Recorded,
    RecordOutcome,
    ReduceOutcome,
    ResultsIncompleteError,
    SubtaskExhaustedError,
    SubtaskFailedError,
    SubtaskOutcome,
)
from fan_out_store import JobStore
from handler_kit import ttl
from handler_kit.clock import Clock, Sleep, epoch_seconds, utc_now

if TYPE_CHECKING:  # annotations only: the reducer, which validates no message, has no pydantic
    from fan_out_messages import SubtaskMessage

logger = Logger(child=True)


# --------------------------------------------------------------------------- worker logic


def run_subtask(message: SubtaskMessage, *, sleep: Sleep = time.sleep) -> int:
    """The stand-in for real work: wait ``work_ms``, then square the value (or fail).

    Raises
    ------
    SubtaskFailedError
        The message asks to fail (a poison subtask: it fails on every delivery).
    """
    if message.work_ms:
        sleep(message.work_ms / 1000)
    if message.fail:
        raise SubtaskFailedError(f"subtask {message.index} failed (fail requested)")
    return message.value * message.value


def process_subtask(
    store: JobStore,
    message: SubtaskMessage,
    *,
    receive_count: int,
    settings: FanOutSettings,
    now: Clock = utc_now,
    sleep: Sleep = time.sleep,
) -> SubtaskOutcome:
    """Run one delivery of a subtask and count it exactly once.

    A failure is retried (raised) until the queue's last receive; on that receive it is
    stored and counted like a result, then raised once more so the message moves to
    the DLQ for inspection. Either way the job's counter reaches 0 and the job ends.

    Raises
    ------
    SubtaskFailedError
        The work failed and the message has receives left.
    SubtaskExhaustedError
        The work failed on the last receive; the failure is counted.
    TransactionConflictError
        The counter stayed contended; retry the message.
    """
    started = now()
    if message.deadline_epoch is not None and epoch_seconds(started) >= message.deadline_epoch:
        # Its result would be refused: do not spend the work on it (a job that timed out
        # would otherwise hold every worker until its last message ran for nothing).
        if store.mark_timed_out(message.job_id, started):
            logger.info("job past its deadline: marked TIMED_OUT", job_id=message.job_id)
            return SubtaskOutcome.TIMED_OUT
        logger.info("job past its deadline; message consumed unrun", job_id=message.job_id)
        return SubtaskOutcome.JOB_CLOSED
    expires_at = epoch_seconds(started) + settings.retention_days * 86_400
    try:
        result = run_subtask(message, sleep=sleep)
    except SubtaskFailedError as exc:
        if receive_count < settings.max_receive_count:
            raise
        error = {"code": "subtask_failed", "message": str(exc), "receives": receive_count}
        recorded = store.record_outcome(message, now=now(), expires_at=expires_at, error=error)
        if recorded.outcome is RecordOutcome.DUPLICATE and recorded.stored_ok:
            return SubtaskOutcome.DUPLICATE  # an earlier delivery succeeded
        if recorded.outcome is RecordOutcome.JOB_CLOSED:
            return _closed(store, message, recorded, now())
        raise SubtaskExhaustedError(
            f"subtask {message.index} of job {message.job_id} failed {receive_count} times; "
            "counted as failed"
        ) from exc
    recorded = store.record_outcome(message, now=now(), expires_at=expires_at, result=result)
    if recorded.outcome is RecordOutcome.RECORDED:
        return SubtaskOutcome.COMPLETED
    if recorded.outcome is RecordOutcome.DUPLICATE:
        return SubtaskOutcome.DUPLICATE
    return _closed(store, message, recorded, now())


def _closed(
    store: JobStore, message: SubtaskMessage, recorded: Recorded, now: datetime
) -> SubtaskOutcome:
    """The job refused the outcome: close it if it is merely late, else just consume."""
    job = recorded.job
    if (
        job is not None
        and job.get("status") in (JobStatus.RUNNING.value, JobStatus.REDUCING.value)
        and int(job["deadline_epoch"]) <= epoch_seconds(now)
        and store.mark_timed_out(message.job_id, now)
    ):
        logger.info("job past its deadline: marked TIMED_OUT", job_id=message.job_id)
        return SubtaskOutcome.TIMED_OUT
    logger.info(
        "job no longer takes results; message consumed",
        job_id=message.job_id,
        status=None if job is None else job.get("status"),
    )
    return SubtaskOutcome.JOB_CLOSED


# --------------------------------------------------------------------------- reducer logic


def aggregate_results(results: Iterable[Mapping[str, Any]]) -> JobAggregate:
    """Sum, count, min and max of the successful results; failed indexes listed (capped).

    Returns
    -------
    JobAggregate
        ``{"count", "sum", "min", "max", "failed", "failed_subtasks"}``; min and max
        are None when nothing succeeded.
    """
    count = total = failed = 0
    low: int | None = None
    high: int | None = None
    failed_subtasks: list[int] = []
    for item in results:
        if item.get("outcome") == "ok":
            value = int(item["result"])
            count += 1
            total += value
            low = value if low is None else min(low, value)
            high = value if high is None else max(high, value)
        else:
            failed += 1
            if len(failed_subtasks) < MAX_LISTED_FAILURES:
                failed_subtasks.append(int(item["subtask"]))
    return {
        "count": count,
        "sum": total,
        "min": low,
        "max": high,
        "failed": failed,
        "failed_subtasks": failed_subtasks,
    }


def reduce_job(store: JobStore, job_id: str, *, now: Clock = utc_now) -> ReduceOutcome:
    """Aggregate a job whose counter reached 0 and finish it, exactly once in effect.

    Any trigger may call this any number of times, also concurrently: the claim
    (RUNNING to REDUCING, only at remaining = 0) and the finish (REDUCING to DONE or
    FAILED) are conditional, and results are immutable, so every run computes the same
    aggregate and only the first finish is stored.

    Raises
    ------
    ResultsIncompleteError
        Fewer results than ``total`` (should not happen: they are written in the same
        transaction as the decrement); the trigger is retried.
    """
    item = store.claim_reduction(job_id, now())
    if item is None:
        return _not_claimable(store, job_id, now())
    # Results of an earlier, expired job with this id (more subtasks than this one had)
    # may still be in the table: only live ones belong to this job.
    reduced_at = now()
    aggregate = aggregate_results(
        result for result in store.iter_results(job_id) if not ttl.is_expired(result, reduced_at)
    )
    seen = aggregate["count"] + aggregate["failed"]
    if seen != int(item["total"]):
        raise ResultsIncompleteError(f"job {job_id}: {seen} results for {item['total']} subtasks")
    error = None
    status = JobStatus.DONE
    if aggregate["failed"]:
        status = JobStatus.FAILED
        error = {
            "code": "subtasks_failed",
            "message": f"{aggregate['failed']} of {item['total']} subtasks failed",
        }
    if store.finish(job_id, status=status, aggregate=aggregate, error=error, now=now()):
        return ReduceOutcome.DONE if status is JobStatus.DONE else ReduceOutcome.FAILED
    return _not_claimable(store, job_id, now())


def _not_claimable(store: JobStore, job_id: str, now: datetime) -> ReduceOutcome:
    item = store.get(job_id, now=now)
    if item is None:
        return ReduceOutcome.MISSING
    if JobStatus(item["status"]) in TERMINAL_STATUSES:
        return ReduceOutcome.ALREADY_FINISHED
    if epoch_seconds(now) >= int(item["deadline_epoch"]):
        return (
            ReduceOutcome.TIMED_OUT
            if store.mark_timed_out(job_id, now)
            else ReduceOutcome.ALREADY_FINISHED
        )
    return ReduceOutcome.NOT_READY
