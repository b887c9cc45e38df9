"""Decoupled invocation: job records, status transitions and the simulated work.

Everything here is plain Python (no Lambda types) so it can be tested directly:
the handlers in ``job_api.py`` and ``job_worker.py`` only parse events, call these
functions and shape responses.

Status transitions are conditional writes in DynamoDB, so a duplicate or late
SQS delivery never redoes or undoes finished work::

    PENDING --claim--> RUNNING --finish--> DONE | FAILED
    PENDING | RUNNING (past deadline) --> TIMED_OUT
    PENDING --enqueue failed--> FAILED (enqueue_failed) --same Idempotency-Key--> PENDING
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from handler_kit import ttl
from handler_kit.clock import Clock, Sleep, epoch_seconds, iso_timestamp, utc_now
from handler_kit.config import int_fields_from_env
from handler_kit.dynamodb import KeyedTable
from handler_kit.errors import IdempotencyKeyReusedError as IdempotencyKeyReusedError
from handler_kit.errors import InvalidRequestError as InvalidRequestError
from handler_kit.errors import PayloadTooLargeError as PayloadTooLargeError
from handler_kit.requests import describe_validation_error, request_fingerprint, resource_id_for
from handler_kit.responses import StoredResponse
from handler_kit.strict_json import InvalidJsonError, parse_model
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb,sqs] is installed, Any otherwise
    from mypy_boto3_sqs.client import SQSClient

logger = Logger(child=True)

#: Largest accepted POST body, measured on the raw (base64-decoded) bytes.
MAX_BODY_BYTES = 16 * 1024
#: Longest simulated work a job may ask for (``duration_ms``; the API refuses more).
MAX_DURATION_MS = 10_000
#: What a job takes besides its work: the claim, a re-read, the finish (DynamoDB calls,
#: with their retries). A worker starts a job only if this and the longest work still
#: fit in its invocation (``JOB_BUDGET_MS``, set by the stack from the same numbers).
JOB_OVERHEAD_MS = 2_000
JOB_BUDGET_MS = MAX_DURATION_MS + JOB_OVERHEAD_MS
#: Fixed namespace for deterministic job ids derived from an Idempotency-Key.
JOB_ID_NAMESPACE = uuid.UUID("6f0c4c1e-3a7d-5b8e-9f51-2d7c0b4a9e63")

_HEX = "[0-9a-fA-F]"
_UUID_RE = re.compile(rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")


# --------------------------------------------------------------------------- errors


class JobNotFoundError(LookupError):
    """No job with this id exists (HTTP 404)."""


class EnqueueFailedError(RuntimeError):
    """The job could not be put on the task queue (HTTP 503, the client may retry)."""


class InvalidTaskMessageError(ValueError):
    """A queue message body is not a valid task message (poison message)."""


class JobLeasedError(RuntimeError):
    """Another delivery holds a live lease on the job; the message is retried later."""


class JobClaimConflictError(RuntimeError):
    """The job changed between the failed claim and the re-read; retry the message."""


class JobIdCollisionError(RuntimeError):
    """A random job id already exists (should never happen with uuid4)."""


class JobFailedError(Exception):
    """A business failure of the job: recorded as FAILED, the message is consumed."""


class SimulatedCrashError(RuntimeError):
    """An unexpected failure of the job: not caught, the message is retried."""


class NotStartedError(RuntimeError):
    """Too little of the invocation is left to run a job of the longest duration.

    The job is not touched and its message is handed back (a batch item failure): a job
    cut off by the function timeout would fail the whole batch instead, finished jobs
    included. The stack sizes batch and timeout so that this does not happen; this is
    the defence if it ever does (a slow DynamoDB, a changed setting).
    """


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class JobSettings:
    """Tunables shared by the API and the worker.

    Attributes
    ----------
    job_timeout_seconds : int
        A job not finished by ``created_at`` + this is TIMED_OUT.
    retry_after_seconds : int
        Value of the ``Retry-After`` header.
    retention_days : int
        The TTL attribute ``expires_at`` is ``created_at`` + this.
    """

    job_timeout_seconds: int = 300
    retry_after_seconds: int = 2
    retention_days: int = 7

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JobSettings:
        """Read ``JOB_TIMEOUT_SECONDS``, ``RETRY_AFTER_SECONDS`` and ``JOB_RETENTION_DAYS``.

        Raises
        ------
        ValueError
            If a variable is set but is not a positive integer.
        """
        env = os.environ if environ is None else environ
        return cls(
            **int_fields_from_env(
                cls,
                {
                    "job_timeout_seconds": "JOB_TIMEOUT_SECONDS",
                    "retry_after_seconds": "RETRY_AFTER_SECONDS",
                    "retention_days": "JOB_RETENTION_DAYS",
                },
                env,
            ),
        )


# --------------------------------------------------------------------------- models


class JobStatus(StrEnum):
    """Lifecycle of a job."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.TIMED_OUT})


class JobRequest(BaseModel):
    """The validated body of ``POST /jobs``.

    Strict types (no ``"5"`` for 5, no ``true`` for 1) and no extra fields, matching
    the JSON schema model API Gateway validates with.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    task: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    input: Annotated[str, Field(max_length=4096)] = ""
    duration_ms: Annotated[int, Field(ge=0, le=MAX_DURATION_MS)] = 0
    outcome: Literal["succeed", "fail", "crash"] = "succeed"


class TaskMessage(BaseModel):
    """The SQS message body ``{"job_id": "<uuid>"}``.

    Unknown fields are ignored so a newer API can add fields while an older
    worker version still drains the queue.
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    job_id: Annotated[str, Field(pattern=_UUID_RE.pattern)]


@dataclass(frozen=True)
class JobView:
    """What a client sees of a job, with TIMED_OUT computed on read.

    Attributes
    ----------
    job_id, status, created_at, updated_at : str
        Identity, effective status and ISO-8601 timestamps.
    result : dict or None
        Set when DONE.
    error : dict or None
        ``{"code", "message"}`` when FAILED or TIMED_OUT.
    """

    job_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def is_finished(self) -> bool:
        """True once the status is terminal (the client can stop polling)."""
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready body for ``GET /jobs/{job_id}``."""
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.status is JobStatus.DONE:
            body["result"] = self.result
        elif self.status in (JobStatus.FAILED, JobStatus.TIMED_OUT):
            body["error"] = self.error
        return body


@dataclass(frozen=True)
class Submission:
    """Outcome of :func:`submit_job`.

    Attributes
    ----------
    view : JobView
        The job as it is now.
    created : bool
        False when an Idempotency-Key retry found the existing job.
    """

    view: JobView
    created: bool
    response: StoredResponse


#: Builds the ``POST /jobs`` answer of a job view (the API owns its shape and links).
Render = Callable[[JobView], StoredResponse]


class RunOutcome(Enum):
    """What :func:`run_job` did with one delivery (the handler turns it into metrics)."""

    COMPLETED = "completed"  # ran and stored DONE
    FAILED = "failed"  # ran, business failure stored as FAILED
    TIMED_OUT = "timed_out"  # past the deadline: stored TIMED_OUT, not run
    DUPLICATE = "duplicate"  # already terminal: nothing done
    MISSING = "missing"  # no such item (e.g. expired by TTL): nothing done
    DISCARDED = "discarded"  # ran, but lost the lease meanwhile: result dropped


# --------------------------------------------------------------------------- parsing


def parse_job_request(raw: bytes) -> JobRequest:
    """Validate a ``POST /jobs`` body.

    Raises
    ------
    InvalidRequestError
        Empty body, malformed or not strict JSON (see ``handler_kit.strict_json``),
        missing, extra or wrongly typed fields.
    """
    if not raw.strip():
        raise InvalidRequestError("request body is required: a JSON object with a 'task' field")
    try:
        return parse_model(JobRequest, raw)
    except ValidationError as exc:
        raise InvalidRequestError(describe_validation_error(exc)) from None


def parse_job_id(value: str) -> str:
    """Return ``value`` as a canonical lower-case UUID string.

    Raises
    ------
    InvalidRequestError
        If it does not look like a UUID (8-4-4-4-12 hex digits).
    """
    if not _UUID_RE.fullmatch(value):
        raise InvalidRequestError("job_id must be a UUID")
    return value.lower()


def parse_task_message(body: str) -> TaskMessage:
    """Validate an SQS message body.

    Raises
    ------
    InvalidTaskMessageError
        If the body is not ``{"job_id": "<uuid>"}`` (a poison message).
    """
    try:
        message = parse_model(TaskMessage, body)
    except InvalidJsonError as exc:
        raise InvalidTaskMessageError(f"invalid task message: {exc}") from None
    except ValidationError as exc:
        raise InvalidTaskMessageError(
            f"invalid task message: {describe_validation_error(exc)}"
        ) from None
    return TaskMessage(job_id=message.job_id.lower())


def request_hash(request: JobRequest) -> str:
    """SHA-256 of the canonical JSON of the validated request (defaults included)."""
    return request_fingerprint(request)


def job_id_for(caller: str, idempotency_key: str | None) -> str:
    """Job id: deterministic uuid5 over (caller, key) when a key is given, else uuid4."""
    return resource_id_for(JOB_ID_NAMESPACE, caller, idempotency_key)


# --------------------------------------------------------------------------- storage


class JobStore(KeyedTable):
    """The job table. Every status change is a conditional write.

    Parameters
    ----------
    client : DynamoDBClient
        A low-level boto3 DynamoDB client (cheaper to create than the resource).
    table_name : str
        Table with partition key ``job_id`` (S) and TTL attribute ``expires_at``.
    """

    key_name = "job_id"
    attribute_names = ("status", "result", "error", "code")
    ttl_attribute = ttl.TTL_ATTRIBUTE

    def mark_enqueue_failed(self, job_id: str, now: datetime) -> bool:
        """PENDING to FAILED (``enqueue_failed``); False if the job already left PENDING."""
        return (
            self._update_if(
                job_id,
                update="SET #status = :failed, #error = :error, updated_at = :now_iso",
                condition="#status = :pending",
                values={
                    ":failed": JobStatus.FAILED.value,
                    ":pending": JobStatus.PENDING.value,
                    ":error": {
                        "code": "enqueue_failed",
                        "message": "the job could not be queued; retry the request",
                    },
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )

    def rearm_enqueue_failed(self, job_id: str, request_hash: str, now: datetime) -> bool:
        """FAILED (``enqueue_failed``) back to PENDING, only before the deadline."""
        return (
            self._update_if(
                job_id,
                update="SET #status = :pending, updated_at = :now_iso REMOVE #error",
                condition=(
                    "#status = :failed AND #error.#code = :enqueue_failed"
                    " AND request_hash = :hash AND deadline_epoch > :now"
                ),
                values={
                    ":pending": JobStatus.PENDING.value,
                    ":failed": JobStatus.FAILED.value,
                    ":enqueue_failed": "enqueue_failed",
                    ":hash": request_hash,
                    ":now": epoch_seconds(now),
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )

    def claim(
        self, job_id: str, *, lease_owner: str, lease_expires_epoch: int, now: datetime
    ) -> dict[str, Any] | None:
        """Take the job for one delivery: PENDING (or RUNNING with an expired lease) to RUNNING.

        Returns
        -------
        dict or None
            The claimed item, or None if the job is not claimable (missing, expired,
            terminal, leased by another delivery, or past its deadline).
        """
        return self._update_if(
            job_id,
            update=(
                "SET #status = :running, lease_owner = :owner,"
                " lease_expires_epoch = :lease, updated_at = :now_iso ADD attempts :one"
            ),
            condition=(
                "(#status = :pending OR (#status = :running AND lease_expires_epoch < :now))"
                f" AND deadline_epoch > :now AND {ttl.unexpired_condition()}"
            ),
            values={
                ":running": JobStatus.RUNNING.value,
                ":pending": JobStatus.PENDING.value,
                ":owner": lease_owner,
                ":lease": lease_expires_epoch,
                ":now": epoch_seconds(now),
                ":now_iso": iso_timestamp(now),
                ":one": 1,
                **ttl.condition_values(now),
            },
            return_new=True,
        )

    def finish(
        self,
        job_id: str,
        *,
        lease_owner: str,
        now: datetime,
        result: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> bool:
        """RUNNING to DONE (``result``) or FAILED (``error``), only while we hold the lease.

        Returns
        -------
        bool
            False if another delivery took the job over (our outcome is discarded).
        """
        if (result is None) == (error is None):
            raise ValueError("give exactly one of result or error")
        field, status, payload = (
            ("#result", JobStatus.DONE, result)
            if result is not None
            else ("#error", JobStatus.FAILED, error)
        )
        return (
            self._update_if(
                job_id,
                update=(
                    f"SET #status = :status, {field} = :payload, updated_at = :now_iso"
                    " REMOVE lease_owner, lease_expires_epoch"
                ),
                condition="#status = :running AND lease_owner = :owner",
                values={
                    ":status": status.value,
                    ":payload": dict(payload or {}),
                    ":running": JobStatus.RUNNING.value,
                    ":owner": lease_owner,
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )

    def mark_timed_out(self, job_id: str, now: datetime) -> bool:
        """PENDING/RUNNING past the deadline to TIMED_OUT; False if no longer applicable."""
        return (
            self._update_if(
                job_id,
                update=(
                    "SET #status = :timed_out, #error = :error, updated_at = :now_iso"
                    " REMOVE lease_owner, lease_expires_epoch"
                ),
                condition="#status IN (:pending, :running) AND deadline_epoch <= :now",
                values={
                    ":timed_out": JobStatus.TIMED_OUT.value,
                    ":pending": JobStatus.PENDING.value,
                    ":running": JobStatus.RUNNING.value,
                    ":error": {
                        "code": "timed_out",
                        "message": "the job did not finish before its deadline",
                    },
                    ":now": epoch_seconds(now),
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )


class TaskQueue:
    """The SQS task queue.

    Parameters
    ----------
    client : SQSClient
        A boto3 SQS client.
    queue_url : str
        URL of the task queue.
    """

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, job_id: str, *, correlation_id: str | None = None) -> None:
        """Queue ``{"job_id": ...}``; the correlation id travels as a message attribute."""
        attributes: dict[str, Any] = {}
        if correlation_id:
            attributes["correlation_id"] = {"DataType": "String", "StringValue": correlation_id}
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps({"job_id": job_id}),
            MessageAttributes=attributes,
        )


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
        "attempts": 0,
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
    """Read a job for ``GET /jobs/{job_id}`` (never writes).

    Raises
    ------
    JobNotFoundError
        If there is no such job, or only one past its TTL (not yet deleted).
    """
    item = store.get(job_id, now=now)
    if item is None:
        raise JobNotFoundError(f"job {job_id} not found")
    return job_view(item, now)


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
    if store.mark_enqueue_failed(job_id, now):
        raise EnqueueFailedError("the job could not be queued; retry the request")
    # The job left PENDING, so a worker got the message after all (the send
    # failed after SQS had stored it): the submission did succeed.
    logger.info("SendMessage raised but the job is already being processed", job_id=job_id)


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
        Caller identity; scopes the Idempotency-Key.
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
            raise EnqueueFailedError("the job could not be queued; retry the request")
    elif (
        view.status is JobStatus.FAILED
        and error.get("code") == "enqueue_failed"
        # The first attempt answered 503 and invited this retry: queue it again.
        and store.rearm_enqueue_failed(job_id, expected_hash, now)
    ):
        _enqueue_new(store, queue, job_id, now, correlation_id)
        existing = store.get(job_id, now=now) or existing
        view = job_view(existing, now)
    unsent = (existing.get("error") or {}).get("code") == "enqueue_failed"
    if "response" in existing and not unsent:
        stored = StoredResponse.from_json(existing["response"])
        return Submission(view=view, created=False, response=stored)
    # A job written before answers were stored, or one whose enqueue failed for good.
    return Submission(view=view, created=False, response=render(view))


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


def ensure_time_to_start(remaining_ms: int, *, budget_ms: int = JOB_BUDGET_MS) -> None:
    """Refuse to start a job unless one of the longest jobs still fits in the invocation.

    Parameters
    ----------
    remaining_ms : int
        The invocation's remaining time (``context.get_remaining_time_in_millis()``).
    budget_ms : int
        The longest work a job may ask for plus what a job needs besides it.

    Raises
    ------
    NotStartedError
        If less than ``budget_ms`` remains.

    Examples
    --------
    >>> ensure_time_to_start(12_000, budget_ms=12_000)
    >>> ensure_time_to_start(11_999, budget_ms=12_000)
    Traceback (most recent call last):
    ...
    jobs.NotStartedError: 11999 ms left, a job may need 12000 ms: handed back unstarted
    """
    if remaining_ms < budget_ms:
        raise NotStartedError(
            f"{remaining_ms} ms left, a job may need {budget_ms} ms: handed back unstarted"
        )


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
        Identifies this delivery (the SQS messageId).
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
    logger.info("job claimed", job_id=job_id, attempts=item.get("attempts"))
    try:
        result = simulate_work(request, sleep=sleep)
    except JobFailedError as exc:
        error = {"code": "job_failed", "message": str(exc)}
        if store.finish(job_id, lease_owner=lease_owner, now=clock(), error=error):
            return RunOutcome.FAILED
    else:
        if store.finish(job_id, lease_owner=lease_owner, now=clock(), result=result):
            return RunOutcome.COMPLETED
    logger.warning("lost the lease while working; result discarded", job_id=job_id)
    return RunOutcome.DISCARDED
