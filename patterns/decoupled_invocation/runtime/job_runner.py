"""Decoupled invocation: the worker's logic (claim, run and finish one delivery).

Plain Python (no Lambda types) so it can be tested directly: ``job_worker.py`` only
parses events, calls these functions and shapes responses. A duplicate or late SQS
delivery never redoes or undoes finished work (the claim and finish are conditional
writes, see ``job_store.py``).
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from handler_kit.clock import Clock, Sleep, epoch_seconds, utc_now
from handler_kit.status_transitions import attempts_of
from job_models import (
    TERMINAL_STATUSES,
    JobClaimConflictError,
    JobFailedError,
    JobLeasedError,
    JobRequest,
    JobStatus,
    RunOutcome,
    SimulatedCrashError,
)
from job_store import JobStore

logger = Logger(child=True)

# --------------------------------------------------------------------------- worker logic


def simulate_work(request: JobRequest, *, sleep: Sleep = time.sleep) -> dict[str, Any]:
    """The stand-in for real work: wait ``duration_ms`` then act out ``outcome``.

    Parameters
    ----------
    request : JobRequest
        The job's request.
    sleep : callable
        Injected so tests do not wait.

    Returns
    -------
    dict
        ``{"sha256": <hex of input>, "length": len(input), "task": task}``.

    Raises
    ------
    JobFailedError
        ``outcome == "fail"`` (a business failure).
    SimulatedCrashError
        ``outcome == "crash"`` (an unexpected error).
    """
    if request.duration_ms:
        sleep(request.duration_ms / 1000)
    if request.outcome == "fail":
        raise JobFailedError(f"task {request.task} failed (outcome=fail requested)")
    if request.outcome == "crash":
        raise SimulatedCrashError(f"task {request.task} crashed (outcome=crash requested)")
    return {
        "sha256": hashlib.sha256(request.input.encode("utf-8")).hexdigest(),
        "length": len(request.input),
        "task": request.task,
    }


def _resolve_unclaimable(store: JobStore, job_id: str, now: datetime) -> RunOutcome:
    """Decide what a delivery does when the claim's condition failed."""
    item = store.get(job_id, now=now)
    if item is None:
        logger.warning("job not found (or expired); nothing to do", job_id=job_id)
        return RunOutcome.MISSING
    status = JobStatus(item["status"])
    if status in TERMINAL_STATUSES:
        logger.info("duplicate delivery of a finished job", job_id=job_id, status=status.value)
        return RunOutcome.DUPLICATE
    if epoch_seconds(now) >= int(item["deadline_epoch"]):
        if store.mark_timed_out(job_id, now):
            logger.info("job past its deadline: marked TIMED_OUT", job_id=job_id)
            return RunOutcome.TIMED_OUT
        # Someone else finished it in the meantime.
        return RunOutcome.DUPLICATE
    if status is JobStatus.RUNNING and int(item.get("lease_expires_epoch", 0)) >= epoch_seconds(
        now
    ):
        raise JobLeasedError(
            f"job {job_id} is leased by {item.get('lease_owner')} until"
            f" {item.get('lease_expires_epoch')}"
        )
    raise JobClaimConflictError(f"job {job_id} changed during the claim; retrying")


def run_job(
    store: JobStore,
    job_id: str,
    *,
    lease_owner: str,
    remaining_ms: int,
    clock: Clock = utc_now,
    sleep: Sleep = time.sleep,
) -> RunOutcome:
    """Process one delivery of a task message.

    Parameters
    ----------
    store : JobStore
        The job table.
    job_id : str
        From the message.
    lease_owner : str
        Identifies this delivery: unique per call
        (``handler_kit.status_transitions.lease_owner_for`` of the SQS messageId).
    remaining_ms : int
        Remaining time of the invocation; the lease lasts at least that long so
        it cannot expire while this delivery may still be working.
    clock, sleep : callable
        Injected time.

    Returns
    -------
    RunOutcome
        What happened; only COMPLETED and FAILED ran the work and kept the result.

    Raises
    ------
    JobLeasedError
        Another delivery holds a live lease (retry the message later).
    JobClaimConflictError
        The job changed under us (retry the message).
    SimulatedCrashError
        The work crashed; the job stays RUNNING until its lease expires.
    """
    now = clock()
    lease_expires = math.ceil(now.timestamp() + remaining_ms / 1000)
    item = store.claim(job_id, lease_owner=lease_owner, lease_expires_epoch=lease_expires, now=now)
    if item is None:
        return _resolve_unclaimable(store, job_id, now)

    request = JobRequest.model_validate(item["request"])
    logger.info("job claimed", job_id=job_id, attempts=attempts_of(item))
    try:
        result = simulate_work(request, sleep=sleep)
    except JobFailedError as exc:
        error = {"code": "job_failed", "message": str(exc)}
        if store.finish(job_id, lease_owner=lease_owner, now=clock(), error=error):
            return RunOutcome.FAILED
    else:
        if store.finish(job_id, lease_owner=lease_owner, now=clock(), result=result):
            return RunOutcome.COMPLETED
    # Finished past the deadline: make the stored status the TIMED_OUT clients were
    # already answered (a no-op if another delivery took the job over meanwhile).
    if store.mark_timed_out(job_id, clock()):
        logger.warning("finished past the deadline; marked TIMED_OUT", job_id=job_id)
        return RunOutcome.TIMED_OUT
    logger.warning("lost the lease while working; result discarded", job_id=job_id)
    return RunOutcome.DISCARDED
