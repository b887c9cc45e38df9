"""Decoupled invocation: the API's logic (submit a job, read a job).

Plain Python (no Lambda types) so it can be tested directly: ``job_api.py`` only
parses events, calls these functions and shapes responses. The job is written before
it is queued, so a worker never receives a message for a job that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from handler_kit.clock import epoch_seconds, iso_timestamp
from handler_kit.errors import IdempotencyKeyReusedError
from handler_kit.responses import StoredResponse
from job_models import (
    ENQUEUE_FAILED_MESSAGE,
    EnqueueFailedError,
    JobIdCollisionError,
    JobNotFoundError,
    JobRequest,
    JobSettings,
    JobStatus,
    JobView,
    Render,
    Submission,
    job_id_for,
    request_hash,
)
from job_store import JobStore, TaskQueue

logger = Logger(child=True)

# --------------------------------------------------------------------------- API logic


def new_job_item(
    job_id: str,
    request: JobRequest,
    *,
    now: datetime,
    settings: JobSettings,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Build the PENDING item written by ``POST /jobs``."""
    created = epoch_seconds(now)
    created_at = iso_timestamp(now)
    item: dict[str, Any] = {
        "job_id": job_id,
        "status": JobStatus.PENDING.value,
        "created_at": created_at,
        "created_epoch": created,
        "deadline_epoch": created + settings.job_timeout_seconds,
        "expires_at": created + settings.retention_days * 86_400,
        "request": request.model_dump(),
        "request_hash": request_hash(request),
        "updated_at": created_at,
    }
    if idempotency_key is not None:
        item["idempotency_key"] = idempotency_key
    return item


def job_view(item: Mapping[str, Any], now: datetime) -> JobView:
    """Client view of a stored item; PENDING/RUNNING past ``deadline_epoch`` reads TIMED_OUT."""
    status = JobStatus(item["status"])
    error = item.get("error")
    if status in (JobStatus.PENDING, JobStatus.RUNNING) and epoch_seconds(now) >= int(
        item["deadline_epoch"]
    ):
        status = JobStatus.TIMED_OUT
    if status is JobStatus.TIMED_OUT and (error is None or error.get("code") != "timed_out"):
        timeout = int(item["deadline_epoch"]) - int(item["created_epoch"])
        error = {
            "code": "timed_out",
            "message": f"the job did not finish within {timeout} seconds",
        }
    return JobView(
        job_id=item["job_id"],
        status=status,
        created_at=item["created_at"],
        updated_at=item.get("updated_at", item["created_at"]),
        result=item.get("result"),
        error=error,
    )


def get_job_view(store: JobStore, job_id: str, *, now: datetime) -> JobView:
    """Read a job for ``GET /jobs/{job_id}``.

    A job still PENDING or RUNNING past its deadline is first marked TIMED_OUT (a
    conditional write), so the answer is final: a worker's finish sent before the
    deadline can land after it (the SDK resends a write whose reply it did not get,
    with the same values), and it is then refused instead of turning a job DONE after
    a client was told TIMED_OUT. If the finish landed first, the mark is refused and
    the stored outcome is answered.

    Raises
    ------
    JobNotFoundError
        If there is no such job, or only one past its TTL (not yet deleted).
    """
    item = store.get(job_id, now=now)
    if item is None:
        raise JobNotFoundError(f"job {job_id} not found")
    view = job_view(item, now)
    if view.status is JobStatus.TIMED_OUT and item["status"] != JobStatus.TIMED_OUT.value:
        store.mark_timed_out(job_id, now)
        # Marked here or by another reader, or finished meanwhile: answer what is stored.
        item = store.get(job_id, now=now) or item
        view = job_view(item, now)
    return view


def _enqueue(queue: TaskQueue, job_id: str, correlation_id: str | None) -> bool:
    try:
        queue.send(job_id, correlation_id=correlation_id)
    except (BotoCoreError, ClientError):
        logger.exception("SendMessage failed", extra={"job_id": job_id})
        return False
    return True


def _enqueue_new(
    store: JobStore, queue: TaskQueue, job_id: str, now: datetime, correlation_id: str | None
) -> None:
    """Queue a freshly PENDING job; on failure mark it FAILED and raise."""
    if _enqueue(queue, job_id, correlation_id):
        return
    if store.mark_enqueue_failed(job_id, now) or _enqueue_failed(store.get(job_id, now=now)):
        # Marked here, or by this very write whose reply was lost (its SDK retry then
        # failed its condition on the FAILED it had written).
        raise EnqueueFailedError(ENQUEUE_FAILED_MESSAGE)
    # The job left PENDING, so a worker got the message after all (the send
    # failed after SQS had stored it): the submission did succeed.
    logger.info("SendMessage raised but the job is already being processed", job_id=job_id)


def _enqueue_failed(item: Mapping[str, Any] | None) -> bool:
    return (
        item is not None
        and item["status"] == JobStatus.FAILED.value
        and (item.get("error") or {}).get("code") == "enqueue_failed"
    )


def submit_job(
    store: JobStore,
    queue: TaskQueue,
    request: JobRequest,
    *,
    now: datetime,
    settings: JobSettings,
    caller: str = "anonymous",
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
    render: Render,
) -> Submission:
    """Store a PENDING job, then queue it (``POST /jobs``).

    The item is written first (``attribute_not_exists``) so a worker can never
    receive a message for a job that does not exist. A keyed job keeps its first
    answer (``render`` of the new job): a retry, also a concurrent one that lost the
    put, is answered those bytes.

    Parameters
    ----------
    store, queue : JobStore, TaskQueue
        Where the job is written and queued.
    request : JobRequest
        The validated request.
    now : datetime
        Creation time.
    settings : JobSettings
        Timeout and retention.
    caller : str
        Caller identity; scopes the Idempotency-Key and is the message's tenant.
    idempotency_key : str, optional
        Makes the job id deterministic so a retry finds the same job.
    correlation_id : str, optional
        Propagated to the worker's logs.

    Returns
    -------
    Submission
        The job view; ``created`` is False for an idempotent retry.

    Raises
    ------
    IdempotencyKeyReusedError
        The key was used before with a different request.
    EnqueueFailedError
        SendMessage failed; a new job is marked FAILED (``enqueue_failed``).
    JobIdCollisionError
        A random job id already existed (practically impossible).
    """
    job_id = job_id_for(caller, idempotency_key)
    # The caller is the message's tenant: a caller's backlog delays its own jobs before
    # anyone else's (SQS fair queues).
    queue = queue.for_tenant(caller)
    item = new_job_item(
        job_id, request, now=now, settings=settings, idempotency_key=idempotency_key
    )
    first = render(job_view(item, now))
    if idempotency_key is not None:
        item["response"] = first.to_json()
    # An expired job with this id (the key's earlier use) is replaced, not replayed.
    if store.put_new(item, now=now):
        _enqueue_new(store, queue, job_id, now, correlation_id)
        return Submission(view=job_view(item, now), created=True, response=first)
    if idempotency_key is None:
        raise JobIdCollisionError(f"job id {job_id} already exists")
    return _replay(store, queue, job_id, item["request_hash"], now, correlation_id, render)


def _replay(
    store: JobStore,
    queue: TaskQueue,
    job_id: str,
    expected_hash: str,
    now: datetime,
    correlation_id: str | None,
    render: Render,
) -> Submission:
    """Answer a retry with the same Idempotency-Key: the first answer, from the job item.

    A job whose enqueue failed (its first attempt answered 503) and that cannot be
    queued again is answered as it is now instead: its stored 202 was never sent.
    """
    existing = store.get(job_id, now=now)
    if existing is None:
        # Expired (TTL) between the failed put and this read: let the client retry.
        raise EnqueueFailedError("the job changed while it was being read; retry the request")
    if existing.get("request_hash") != expected_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with a different request body"
        )
    view = job_view(existing, now)
    error = existing.get("error") or {}
    if view.status is JobStatus.PENDING:
        # Duplicate deliveries are harmless; this heals a lost enqueue.
        if not _enqueue(queue, job_id, correlation_id):
            raise EnqueueFailedError(ENQUEUE_FAILED_MESSAGE)
    elif view.status is JobStatus.FAILED and error.get("code") == "enqueue_failed":
        # The first attempt answered 503 and invited this retry: queue it again.
        rearmed = store.rearm_enqueue_failed(job_id, expected_hash, now)
        if not rearmed:
            # PENDING again all the same: this very rearm landed and its reply was lost
            # (or a concurrent retry rearmed it). Queue it: a second message is harmless,
            # a job left PENDING unqueued would read TIMED_OUT.
            current = store.get(job_id, now=now)
            rearmed = current is not None and current["status"] == JobStatus.PENDING.value
        if rearmed:
            _enqueue_new(store, queue, job_id, now, correlation_id)
        # Read it again either way: the rearm changed it, or a worker claimed it first
        # (a message for it existed after all), and then it is running, not failed.
        existing = store.get(job_id, now=now) or existing
        view = job_view(existing, now)
    unsent = (existing.get("error") or {}).get("code") == "enqueue_failed"
    if "response" in existing and not unsent:
        stored = StoredResponse.from_json(existing["response"])
        return Submission(view=view, created=False, response=stored)
    # A job written before answers were stored, or one whose enqueue failed for good.
    return Submission(view=view, created=False, response=render(view))
