"""Fan-out/fan-in API logic: submitting a job and the ventilator.

Plain Python on ``fan_out_store``: ``fan_out_api.py`` parses the event, calls these
functions and shapes the HTTP response.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from fan_out_messages import JobRequest, SubtaskMessage
from fan_out_models import (
    JOB_ID_NAMESPACE,
    SEND_ATTEMPTS,
    SQS_BATCH_SIZE,
    FanOutSettings,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    JobIdCollisionError,
    JobStatus,
    JobView,
    VentilationFailedError,
)
from fan_out_store import BatchFailures, JobStore, SubtaskQueue
from fan_out_views import job_view
from handler_kit.clock import Sleep, epoch_seconds, iso_timestamp
from handler_kit.fingerprints import spelled_fingerprint
from handler_kit.http_requests import request_fingerprint, resource_id_for
from handler_kit.responses import StoredResponse

logger = Logger(child=True)


# --------------------------------------------------------------------------- ventilator


@dataclass
class VentilationReport:
    """What :func:`ventilate` achieved.

    Attributes
    ----------
    sent : int
        Subtasks SQS accepted.
    unsent : list of int
        Indexes that failed every attempt (or were not tried before the deadline).
    calls : int
        SendMessageBatch calls made (retries included).
    """

    sent: int = 0
    unsent: list[int] = field(default_factory=list)
    calls: int = 0


def _send_chunk(
    queue: SubtaskQueue,
    chunk: Sequence[SubtaskMessage],
    *,
    sleep: Sleep,
    time_left: Callable[[], float],
) -> tuple[int, list[int], int]:
    """Send one chunk of at most 10, retrying the entries SQS reports as failed on its
    side; an entry refused as the sender's fault is unsent at once (it would fail again)."""
    pending = {str(message.index): message.to_body() for message in chunk}
    refused: list[str] = []
    calls = 0
    for attempt in range(1, SEND_ATTEMPTS + 1):
        if time_left() <= 0:
            break
        calls += 1
        try:
            failures = queue.send_batch(list(pending.items()))
        except (BotoCoreError, ClientError):
            # The whole call failed (one attempt: this loop is the retry); SQS may have stored
            # some entries, and resending them only makes duplicates the workers absorb.
            logger.warning("SendMessageBatch raised", exc_info=True)
            failures = BatchFailures(retryable=list(pending), refused=[])
        if failures.refused:
            logger.error(
                "SQS refused subtasks as the sender's fault", extra={"entries": failures.refused}
            )
            refused += failures.refused
        pending = {entry_id: pending[entry_id] for entry_id in failures.retryable}
        if not pending:
            break
        if attempt < SEND_ATTEMPTS:
            sleep(random.uniform(0, 0.05 * 2**attempt))
    unsent = sorted(int(entry_id) for entry_id in [*pending, *refused])
    return len(chunk) - len(unsent), unsent, calls


def ventilate(
    queue: SubtaskQueue,
    messages: Sequence[SubtaskMessage],
    *,
    concurrency: int,
    sleep: Sleep = time.sleep,
    time_left: Callable[[], float] = lambda: math.inf,
) -> VentilationReport:
    """Send every subtask with SendMessageBatch, 10 per call, ``concurrency`` calls at once.

    Entries a call reports as failed on SQS's side are retried (with jittered backoff)
    up to ``SEND_ATTEMPTS`` times, entries refused as the sender's fault never; chunks
    not tried before ``time_left()`` reaches 0 count as unsent, so the caller can fail
    the job before its own timeout.
    """
    chunks = [messages[i : i + SQS_BATCH_SIZE] for i in range(0, len(messages), SQS_BATCH_SIZE)]
    report = VentilationReport()
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(chunks)))) as pool:
        outcomes = pool.map(
            lambda chunk: _send_chunk(queue, chunk, sleep=sleep, time_left=time_left), chunks
        )
        for sent, unsent, calls in outcomes:
            report.sent += sent
            report.unsent.extend(unsent)
            report.calls += calls
    report.unsent.sort()
    return report


# --------------------------------------------------------------------------- API logic


def new_job_item(
    job_id: str,
    request: JobRequest,
    *,
    now: datetime,
    settings: FanOutSettings,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The RUNNING item written before any subtask is sent: the counter starts at N.

    A keyed job also keeps its key and the request's fingerprint, so a retry can be
    told from a reuse of the key for another request.
    """
    created = epoch_seconds(now)
    created_at = iso_timestamp(now)
    item: dict[str, Any] = {
        "job_id": job_id,
        "status": JobStatus.RUNNING.value,
        "total": request.total,
        "remaining": request.total,
        "done": 0,
        "failed": 0,
        "created_at": created_at,
        "created_epoch": created,
        "deadline_epoch": created + settings.job_timeout_seconds,
        # After the deadline, by which every result (expiring the same time after it
        # was recorded) was recorded: no live result outlives its job.
        "expires_at": created + settings.job_timeout_seconds + settings.retention_days * 86_400,
        "updated_at": created_at,
        "request": request.summary(),
    }
    if idempotency_key is not None:
        item["idempotency_key"] = idempotency_key
        item["request_hash"] = request_fingerprint(request)
    return item


def subtask_messages(
    job_id: str, request: JobRequest, *, deadline_epoch: int | None = None
) -> list[SubtaskMessage]:
    """One message per subtask, in index order."""
    failing = set(request.fail_indexes)
    return [
        SubtaskMessage(
            job_id=job_id,
            index=index,
            value=value,
            fail=index in failing,
            work_ms=request.work_ms,
            deadline_epoch=deadline_epoch,
        )
        for index, value in enumerate(request.values())
    ]


def check_capacity(request: JobRequest, settings: FanOutSettings) -> None:
    """Refuse a job whose own work cannot end well within its deadline.

    Its subtasks run on at most ``worker_max_concurrency`` workers at once, one after
    another in each: ``total * work_ms / concurrency`` of work, which must fit in half
    of the job's time (the rest is for retries and for the other jobs sharing the
    queue). A bigger job would be accepted only to end TIMED_OUT after holding every
    worker, and every other job of the stage with it.

    Raises
    ------
    InvalidRequestError
        The job needs more than half of its time.
    """
    needed = request.total * request.work_ms / 1000 / settings.worker_max_concurrency
    allowed = settings.job_timeout_seconds / 2
    if needed > allowed:
        raise InvalidRequestError(
            f"{request.total} subtasks of {request.work_ms} ms need {needed:.0f} s on this "
            f"stage's {settings.worker_max_concurrency} concurrent workers; a job must fit "
            f"in {allowed:.0f} s (half of its {settings.job_timeout_seconds} s deadline): "
            "lower count or work_ms"
        )


@dataclass(frozen=True)
class Submission:
    """Outcome of :func:`submit_job`.

    Attributes
    ----------
    view : JobView
        The job as the client sees it.
    report : VentilationReport
        What this call sent (nothing for a retry answered from the existing job).
    created : bool
        False when a retry with the same Idempotency-Key found the existing job.
    """

    view: JobView
    report: VentilationReport
    created: bool
    response: StoredResponse


#: Builds the ``POST /jobs`` answer of a job view (the API owns its shape and links).
Render = Callable[[JobView], StoredResponse]


def submit_job(
    store: JobStore,
    queue: SubtaskQueue,
    request: JobRequest,
    *,
    now: datetime,
    settings: FanOutSettings,
    caller: str = "anonymous",
    idempotency_key: str | None = None,
    render: Render,
    sleep: Sleep = time.sleep,
    time_left: Callable[[], float] = lambda: math.inf,
) -> Submission:
    """Record the job (remaining = N), then send its N subtasks (``POST /jobs``).

    The item is written first so a worker can never receive a subtask of a job that
    does not exist, and the counter can never reach 0 before every subtask is counted.
    With an ``idempotency_key`` the job id is derived from (caller, key): a retry finds
    the job its first attempt wrote and sends nothing again, and is answered with the
    first answer (``render`` of the new job, stored in the item) byte for byte.

    Raises
    ------
    InvalidRequestError
        The job cannot end within its deadline (:func:`check_capacity`).
    VentilationFailedError
        Some subtasks could not be queued; the job is now FAILED (``ventilation_failed``)
        and results of the subtasks that were sent are refused.
    IdempotencyKeyReusedError
        The key was used before with a different request.
    JobIdCollisionError
        A random job id already existed (practically impossible).
    """
    job_id = resource_id_for(JOB_ID_NAMESPACE, caller, idempotency_key)
    # The caller is the subtasks' tenant: a big job delays its caller's other work
    # before anyone else's (SQS fair queues).
    queue = queue.for_tenant(caller)
    item = new_job_item(
        job_id, request, now=now, settings=settings, idempotency_key=idempotency_key
    )
    try:
        check_capacity(request, settings)
    except InvalidRequestError:
        # A keyed retry of a job admitted under other settings (a deploy since) replays.
        if idempotency_key is None or store.get(job_id, now=now) is None:
            raise
        return _replayed(store, item, request, now, render)
    first = render(job_view(item, now))
    if idempotency_key is not None:
        # Written with the job, so every retry (also a concurrent one that lost the put)
        # answers these bytes instead of building an answer of its own.
        item["response"] = first.to_json()
    # An expired job with this id (the key's earlier use) is replaced, not replayed.
    if not store.put_new(item, now=now):
        if idempotency_key is None:
            raise JobIdCollisionError(f"job id {job_id} already exists")
        return _replayed(store, item, request, now, render)
    report = ventilate(
        queue,
        subtask_messages(job_id, request, deadline_epoch=int(item["deadline_epoch"])),
        concurrency=settings.send_concurrency,
        sleep=sleep,
        time_left=time_left,
    )
    if report.unsent:
        marked = store.mark_ventilation_failed(job_id, unsent=len(report.unsent), now=now)
        current = store.get(job_id, now=now)
        # Marked here, or by this very write whose reply was lost (its SDK retry then
        # failed its condition on the FAILED it had written).
        if marked or (current is not None and _ventilation_failed(current)):
            raise VentilationFailedError(
                f"{len(report.unsent)} of {request.total} subtasks could not be queued; "
                f"job {job_id} is FAILED, submit it again (with a new Idempotency-Key)"
            )
        # Every subtask was counted after all: a call whose error came after SQS stored
        # its entries (a lost response). The job reduces as any other; answer as if
        # every send had succeeded (a retry with the key is answered the same bytes).
        logger.warning("sends reported failed were delivered; the job goes on", job_id=job_id)
        item = current or item
    return Submission(view=job_view(item, now), report=report, created=True, response=first)


def _ventilation_failed(item: Mapping[str, Any]) -> bool:
    return (
        item["status"] == JobStatus.FAILED.value
        and (item.get("error") or {}).get("code") == "ventilation_failed"
    )


def _replayed(
    store: JobStore,
    item: Mapping[str, Any],
    request: JobRequest,
    now: datetime,
    render: Render,
) -> Submission:
    """The submission of a keyed retry (``item`` is the job it would have recorded):
    the existing job's first answer, nothing sent."""
    hashes = {item["request_hash"], spelled_fingerprint(request)}
    view, response = _replay(store, item["job_id"], hashes, now, render)
    return Submission(view=view, report=VentilationReport(), created=False, response=response)


def _replay(
    store: JobStore, job_id: str, hashes: set[str], now: datetime, render: Render
) -> tuple[JobView, StoredResponse]:
    """Answer a retry with the same Idempotency-Key from the job its first attempt wrote.

    The answer is the stored first answer, except for a job whose ventilation failed:
    its first attempt answered 503, and a retry is told the job is FAILED.
    """
    existing = store.get(job_id, now=now)
    if existing is None:
        # Expired (TTL) between the failed put and this read: the client may retry.
        raise VentilationFailedError("the job changed while it was being read; retry the request")
    # The fingerprint now, or the one a job stored before requests were normalized.
    if existing.get("request_hash") not in hashes:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with a different request body"
        )
    view = job_view(existing, now)
    ventilation_failed = (existing.get("error") or {}).get("code") == "ventilation_failed"
    if "response" in existing and not ventilation_failed:
        return view, StoredResponse.from_json(existing["response"])
    # A job written before answers were stored, or a failed ventilation.
    return view, render(view)
