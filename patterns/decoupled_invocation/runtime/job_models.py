"""Decoupled invocation: constants, errors, settings, the job's models and their parsing.

Plain Python (no Lambda types, no AWS clients): the request and message models, the
client view of a job and the outcomes the other modules return. ``job_store.py`` holds
the table and queue access, ``job_service.py`` the API's logic and ``job_runner.py`` the
worker's; the handlers in ``job_api.py`` and ``job_worker.py`` only parse events, call
these functions and shape responses.

Job lifecycle (each transition is a conditional write, see ``job_store.py``)::

    PENDING --claim--> RUNNING --finish--> DONE | FAILED
    PENDING | RUNNING (past deadline) --> TIMED_OUT
    PENDING --enqueue failed--> FAILED (enqueue_failed) --same Idempotency-Key--> PENDING
    FAILED (enqueue_failed, keyed) --claim (a message was queued after all)--> RUNNING
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired

from handler_kit import http_requests
from handler_kit.config import EnvSettings, env_int
from handler_kit.errors import IdempotencyKeyReusedError as IdempotencyKeyReusedError
from handler_kit.errors import InvalidRequestError as InvalidRequestError
from handler_kit.errors import PayloadTooLargeError as PayloadTooLargeError
from handler_kit.http_requests import (
    request_fingerprint,
    resource_id_for,
)
from handler_kit.messages import parse_message
from pydantic import BaseModel, ConfigDict, Field

# typing_extensions' TypedDict, not typing's: pydantic (blocks/openapi_docs.py, offline)
# turns only that one into JSON schema on Python < 3.12.
from typing_extensions import TypedDict

if TYPE_CHECKING:  # only annotations: the API shapes responses (event handler import)
    from handler_kit.responses import StoredResponse

MAX_BODY_BYTES = 16 * 1024
#: Longest simulated work a job may ask for (``duration_ms``; the API refuses more).
MAX_DURATION_MS = 10_000
#: What a job takes besides its work: the claim, a re-read, the finish (DynamoDB calls
#: of milliseconds) and one attempt among them that stalls and is retried
#: (``handler_kit.clients.worker_client_config``: 3 s, up to 1 s of backoff, the calls).
#: A worker starts a job only if this and the longest work still fit in its invocation
#: (``JOB_BUDGET_MS``, set by the stack from the same numbers).
JOB_OVERHEAD_MS = 5_000
JOB_BUDGET_MS = MAX_DURATION_MS + JOB_OVERHEAD_MS
#: Fixed namespace for deterministic job ids derived from an Idempotency-Key.
JOB_ID_NAMESPACE = uuid.UUID("6f0c4c1e-3a7d-5b8e-9f51-2d7c0b4a9e63")


# --------------------------------------------------------------------------- errors


class JobNotFoundError(LookupError):
    """No job with this id exists (HTTP 404)."""


#: What a client is told when its job could not be queued (503): a retry with the same
#: key re-queues that job; one without a key makes another job.
ENQUEUE_FAILED_MESSAGE = (
    "the job could not be queued; retry the request, with its Idempotency-Key if it had one"
)


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


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class JobSettings(EnvSettings):
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

    job_timeout_seconds: int = env_int(300, "JOB_TIMEOUT_SECONDS")
    retry_after_seconds: int = env_int(2, "RETRY_AFTER_SECONDS")
    retention_days: int = env_int(7, "JOB_RETENTION_DAYS")


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

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    task: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    input: Annotated[str, Field(max_length=4096)] = ""
    duration_ms: Annotated[int, Field(ge=0, le=MAX_DURATION_MS)] = 0
    outcome: Literal["succeed", "fail", "crash"] = "succeed"


class TaskMessage(BaseModel):
    """The SQS message body ``{"job_id": "<uuid>"}``.

    Unknown fields are ignored so a newer API can add fields while an older
    worker version still drains the queue.
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, defer_build=True)

    job_id: Annotated[str, Field(pattern=http_requests.UUID_RE.pattern)]


class JobError(TypedDict):
    """Why a job is FAILED or TIMED_OUT."""

    code: str
    message: str


class JobLinks(TypedDict):
    """Where a job is read."""

    self: str


class AcceptedJobBody(TypedDict):
    """The body of ``POST /jobs``'s 202: the job as submitted and where to poll it."""

    job_id: str
    status: JobStatus
    created_at: str
    links: JobLinks


class JobBody(TypedDict):
    """The body of ``GET /jobs/{job_id}``: ``result`` once DONE, ``error`` once FAILED or
    TIMED_OUT (null if the item has none)."""

    job_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    result: NotRequired[dict[str, Any] | None]
    error: NotRequired[JobError | None]


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
Render = Callable[[JobView], "StoredResponse"]


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
    missing = "request body is required: a JSON object with a 'task' field"
    return http_requests.parse_request(JobRequest, raw, missing=missing)


def parse_job_id(value: str) -> str:
    """``value`` as a canonical lower-case UUID (InvalidRequestError if it is not one)."""
    return http_requests.parse_uuid(value, "job_id")


def parse_task_message(body: str) -> TaskMessage:
    """Validate an SQS message body.

    Raises
    ------
    InvalidTaskMessageError
        If the body is not ``{"job_id": "<uuid>"}`` (a poison message).
    """
    message = parse_message(TaskMessage, body, error=InvalidTaskMessageError, what="task message")
    return TaskMessage(job_id=message.job_id.lower())


def request_hash(request: JobRequest) -> str:
    """SHA-256 of the canonical JSON of the validated request (defaults included)."""
    return request_fingerprint(request)


def job_id_for(caller: str, idempotency_key: str | None) -> str:
    """Job id: deterministic uuid5 over (caller, key) when a key is given, else uuid4."""
    return resource_id_for(JOB_ID_NAMESPACE, caller, idempotency_key)
