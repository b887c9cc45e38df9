"""Fan-out/fan-in models: constants, errors, settings, view models and their parsing
(the pydantic request and message models are in ``fan_out_messages``).

Everything here is plain Python (no Lambda types) so it can be tested directly: the
handlers ``fan_out_api.py``, ``fan_out_worker.py`` and ``fan_out_reducer.py`` only parse
events, call plain functions (``fan_out_service.py`` for the API and the ventilator,
``fan_out_gather.py`` for the worker and the reducer, both on ``fan_out_store.py``) and
shape responses.

Two tables. The job table holds one item per job with the counter; the result table
holds one item per (job, subtask). A subtask's outcome is stored and the counter
decremented in ONE ``TransactWriteItems``: the result put is conditional on
``attribute_not_exists``, so a duplicate delivery cancels the whole transaction and can
never decrement twice. Status transitions are conditional writes::

    RUNNING --remaining = 0 (stream)--> REDUCING --aggregate--> DONE | FAILED
    RUNNING --ventilation failed--> FAILED
    RUNNING | REDUCING (past deadline) --> TIMED_OUT
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, NotRequired

from handler_kit import http_requests
from handler_kit.config import EnvSettings, env_int
from handler_kit.errors import IdempotencyKeyReusedError as IdempotencyKeyReusedError
from handler_kit.errors import InvalidRequestError as InvalidRequestError
from handler_kit.errors import PayloadTooLargeError as PayloadTooLargeError

# typing_extensions' TypedDict, not typing's: pydantic (blocks/openapi_docs.py, offline)
# turns only that one into JSON schema on Python < 3.12.
from typing_extensions import TypedDict

#: Most subtasks one job may have.
MAX_SUBTASKS = 10_000
#: Largest accepted POST body (10,000 items of 11 characters fit).
MAX_BODY_BYTES = 256 * 1024
#: Most subtask indexes a request may ask to fail, and a finished job lists.
MAX_LISTED_FAILURES = 100
#: SendMessageBatch takes at most 10 entries.
SQS_BATCH_SIZE = 10
#: Attempts at one SendMessageBatch chunk (the call, then its failed entries).
SEND_ATTEMPTS = 5
#: Attempts at one TransactWriteItems that DynamoDB cancels for a transient reason
#: (a conflict with another transaction, a throttled item).
TRANSACTION_ATTEMPTS = 4
#: What a subtask takes besides its work: the result's transaction (with its attempts
#: after a conflict), the job's re-read, and one attempt among those calls that stalls
#: and is retried (``handler_kit.clients.worker_client_config``: 3 s, up to 1 s of
#: backoff, the calls). A worker starts a subtask only if this and the
#: subtask's ``work_ms`` still fit in its invocation. Unlike the decoupled worker's, a
#: batch is not sized for this in every subtask (10 x 6 s against 30 s): its tail is
#: handed back then, since smaller batches would weaken SQS fair queues (README).
SUBTASK_OVERHEAD_MS = 5_000

#: Namespace of the job ids derived from (caller, Idempotency-Key).
JOB_ID_NAMESPACE = uuid.UUID("3d5b1f8e-9c0a-5e4d-8b7f-1a2c3e4d5f60")

#: Largest absolute subtask value. A subtask squares its value and the aggregate sums
#: up to 10,000 squares: 10,000 x 900,000² = 8.1 x 10^15 stays under 2^53, so every
#: figure of the aggregate is exact in JSON parsers that read numbers as doubles
#: (JavaScript's); with 10^9 a sum reached 10^22 and came back rounded.
VALUE_LIMIT = 900_000


# --------------------------------------------------------------------------- errors


class JobNotFoundError(LookupError):
    """No job with this id exists (HTTP 404)."""


class JobIdCollisionError(RuntimeError):
    """A random job id already exists (should never happen with uuid4)."""


class VentilationFailedError(RuntimeError):
    """Some subtasks could not be queued; the job was marked FAILED (HTTP 503)."""


class InvalidSubtaskMessageError(ValueError):
    """A queue message body is not a subtask message (poison message)."""


class SubtaskFailedError(Exception):
    """The subtask's work failed; the message is retried, and counted on its last receive."""


class SubtaskExhaustedError(RuntimeError):
    """A failure recorded on the last receive; raised so the message moves to the DLQ."""


class TransactionConflictError(RuntimeError):
    """TransactWriteItems kept conflicting with concurrent transactions on the job item
    (or was cancelled for a reason other than a condition); retry the message."""


class ResultsIncompleteError(RuntimeError):
    """The reducer found fewer results than the counter says exist; retry the reduction."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class FanOutSettings(EnvSettings):
    """Tunables shared by the functions.

    Attributes
    ----------
    job_timeout_seconds : int
        A job not finished by ``created_at`` + this is TIMED_OUT.
    retry_after_seconds : int
        Value of the ``Retry-After`` header.
    retention_days : int
        Result items expire (TTL ``expires_at``) this long after they are recorded, job
        items this long after their deadline: a job outlives every result of it, so
        when a job with its id is created anew (a reused Idempotency-Key) no live
        result of the old one is left to pass for the new one's.
    max_receive_count : int
        The subtask queue's maxReceiveCount: a failure on this receive is counted.
    send_concurrency : int
        Parallel SendMessageBatch calls of the ventilator.
    worker_max_concurrency : int
        The most worker invocations at once (the queue's event source mapping): how
        much subtask work the stage does per second, which a job must fit in.
    """

    job_timeout_seconds: int = env_int(900, "JOB_TIMEOUT_SECONDS")
    retry_after_seconds: int = env_int(2, "RETRY_AFTER_SECONDS")
    retention_days: int = env_int(7, "JOB_RETENTION_DAYS")
    max_receive_count: int = env_int(5, "MAX_RECEIVE_COUNT")
    send_concurrency: int = env_int(16, "SEND_CONCURRENCY")
    worker_max_concurrency: int = env_int(5, "WORKER_MAX_CONCURRENCY")


# --------------------------------------------------------------------------- models


class JobStatus(StrEnum):
    """Lifecycle of a job."""

    RUNNING = "RUNNING"
    REDUCING = "REDUCING"
    DONE = "DONE"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.TIMED_OUT})


def seeded_value(seed: int, index: int) -> int:
    """The deterministic input of subtask ``index`` of a ``count``/``seed`` job (0..999).

    A hash, not ``random``, so every Python version and every client computes the same.
    """
    digest = hashlib.sha256(f"{seed}:{index}".encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big") % 1000


class JobError(TypedDict):
    """Why a job is FAILED or TIMED_OUT."""

    code: str
    message: str


class JobAggregate(TypedDict):
    """The reduction of a finished job's results (``fan_out_gather.aggregate_results``).

    ``min`` and ``max`` are null when no subtask succeeded; ``failed_subtasks`` lists at
    most ``MAX_LISTED_FAILURES`` indexes.
    """

    count: int
    sum: int
    min: int | None
    max: int | None
    failed: int
    failed_subtasks: list[int]


class JobLinks(TypedDict):
    """Where a job is read."""

    self: str


class AcceptedJobBody(TypedDict):
    """The body of ``POST /jobs``'s 202: the job as recorded and where to poll it."""

    job_id: str
    status: JobStatus
    total: int
    created_at: str
    links: JobLinks


class JobBody(TypedDict):
    """The body of ``GET /jobs/{job_id}``: counters, ``aggregate`` once reduced (DONE or
    FAILED), ``error`` once FAILED or TIMED_OUT."""

    job_id: str
    status: JobStatus
    total: int
    done: int
    failed: int
    remaining: int
    created_at: str
    updated_at: str
    aggregate: NotRequired[JobAggregate]
    error: NotRequired[JobError]


@dataclass(frozen=True)
class JobView:
    """What a client sees of a job, with TIMED_OUT computed on read."""

    job_id: str
    status: JobStatus
    total: int
    done: int
    failed: int
    remaining: int
    created_at: str
    updated_at: str
    aggregate: JobAggregate | None = None
    error: JobError | None = None

    @property
    def is_finished(self) -> bool:
        """True once the status is terminal (the client can stop polling)."""
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> JobBody:
        """JSON-ready body for ``GET /jobs/{job_id}`` (a StrEnum serializes as its value)."""
        body: JobBody = {
            "job_id": self.job_id,
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "remaining": self.remaining,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.aggregate is not None:
            body["aggregate"] = self.aggregate
        if self.error is not None:
            body["error"] = self.error
        return body


class RecordOutcome(Enum):
    """What one attempt to store a subtask outcome did."""

    RECORDED = "recorded"  # stored and counted (this delivery decremented)
    DUPLICATE = "duplicate"  # already stored by an earlier delivery: nothing changed
    JOB_CLOSED = "job_closed"  # job missing, finished or past its deadline: nothing changed


@dataclass(frozen=True)
class Recorded:
    """Result of :meth:`JobStore.record_outcome`.

    Attributes
    ----------
    outcome : RecordOutcome
        What happened.
    stored_ok : bool or None
        For a duplicate: whether the stored outcome is a success.
    job : dict or None
        For a closed job: the job item as it was (None if missing).
    """

    outcome: RecordOutcome
    stored_ok: bool | None = None
    job: dict[str, Any] | None = None


class SubtaskOutcome(Enum):
    """What :func:`process_subtask` did with one delivery (the handler makes metrics)."""

    COMPLETED = "completed"  # result stored and counted
    DUPLICATE = "duplicate"  # already counted: nothing changed
    JOB_CLOSED = "job_closed"  # the job no longer takes results: message consumed
    TIMED_OUT = "timed_out"  # this delivery found the job past its deadline and closed it


class ReduceOutcome(Enum):
    """What :func:`reduce_job` did with one trigger."""

    DONE = "done"
    FAILED = "failed"  # some subtasks failed: FAILED with the partial aggregate
    ALREADY_FINISHED = "already_finished"  # another trigger finished it
    NOT_READY = "not_ready"  # remaining > 0 (a stale trigger)
    TIMED_OUT = "timed_out"
    MISSING = "missing"


# --------------------------------------------------------------------------- parsing


def parse_job_id(value: str) -> str:
    """``value`` as a canonical lower-case UUID (InvalidRequestError if it is not one)."""
    return http_requests.parse_uuid(value, "job_id")


def timeout_error() -> JobError:
    """The ``error`` of a job that did not finish before its deadline."""
    return {"code": "timed_out", "message": "the job did not finish before its deadline"}
