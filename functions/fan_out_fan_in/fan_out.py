"""Fan-out/fan-in: job records, the ventilator, the atomic counter and the reducer.

Everything here is plain Python (no Lambda types) so it can be tested directly: the
handlers ``fan_out_api.py``, ``fan_out_worker.py`` and ``fan_out_reducer.py`` only parse
events, call these functions and shape responses.

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
import math
import os
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from handler_kit import dynamodb, ttl
from handler_kit.clock import Clock, Sleep, epoch_seconds, iso_timestamp, utc_now
from handler_kit.config import int_fields_from_env
from handler_kit.errors import IdempotencyKeyReusedError as IdempotencyKeyReusedError
from handler_kit.errors import InvalidRequestError as InvalidRequestError
from handler_kit.errors import PayloadTooLargeError as PayloadTooLargeError
from handler_kit.fingerprints import OrderFree, normalized, spelled_fingerprint
from handler_kit.requests import describe_validation_error, request_fingerprint, resource_id_for
from handler_kit.responses import StoredResponse
from handler_kit.strict_json import InvalidJsonError, parse_model
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb,sqs] is installed, Any otherwise
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

logger = Logger(child=True)

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
#: Attempts at one TransactWriteItems that DynamoDB cancels for a TransactionConflict.
TRANSACTION_ATTEMPTS = 4

#: Namespace of the job ids derived from (caller, Idempotency-Key).
JOB_ID_NAMESPACE = uuid.UUID("3d5b1f8e-9c0a-5e4d-8b7f-1a2c3e4d5f60")

_HEX = "[0-9a-fA-F]"
_UUID_RE = re.compile(rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")
_VALUE_LIMIT = 1_000_000_000


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
class FanOutSettings:
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
    """

    job_timeout_seconds: int = 900
    retry_after_seconds: int = 2
    retention_days: int = 7
    max_receive_count: int = 3
    send_concurrency: int = 16

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FanOutSettings:
        """Read ``JOB_TIMEOUT_SECONDS``, ``RETRY_AFTER_SECONDS``, ``JOB_RETENTION_DAYS``,
        ``MAX_RECEIVE_COUNT`` and ``SEND_CONCURRENCY``.

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
                    "max_receive_count": "MAX_RECEIVE_COUNT",
                    "send_concurrency": "SEND_CONCURRENCY",
                },
                env,
            ),
        )


# --------------------------------------------------------------------------- models


class JobStatus(StrEnum):
    """Lifecycle of a job."""

    RUNNING = "RUNNING"
    REDUCING = "REDUCING"
    DONE = "DONE"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.TIMED_OUT})

_Value = Annotated[int, Field(ge=-_VALUE_LIMIT, le=_VALUE_LIMIT)]
_Index = Annotated[int, Field(ge=0, lt=MAX_SUBTASKS)]


class JobRequest(BaseModel):
    """The validated body of ``POST /jobs``: ``items``, or ``count`` (and ``seed``).

    Strict types and no extra fields, matching the JSON schema model API Gateway
    validates with; the rules a draft-4 schema cannot say (exactly one of items and
    count, failure indexes inside the job) are checked here.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    items: Annotated[list[_Value], Field(min_length=1, max_length=MAX_SUBTASKS)] | None = None
    count: Annotated[int, Field(ge=1, le=MAX_SUBTASKS)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    # A set of indexes: its order means nothing (repeats are refused below).
    fail_indexes: Annotated[list[_Index], Field(max_length=MAX_LISTED_FAILURES), OrderFree()] = []
    work_ms: Annotated[int, Field(ge=0, le=1000)] = 0

    @model_validator(mode="after")
    def _one_source(self) -> JobRequest:
        if (self.items is None) == (self.count is None):
            raise ValueError("give exactly one of 'items' (a list) or 'count' (with 'seed')")
        if self.seed is not None and self.count is None:
            raise ValueError("'seed' goes with 'count', not with 'items'")
        total = self.total
        outside = [index for index in self.fail_indexes if index >= total]
        if outside:
            raise ValueError(f"fail_indexes {outside[:5]} are not subtasks of a {total}-job")
        if len(set(self.fail_indexes)) != len(self.fail_indexes):
            raise ValueError("fail_indexes must not repeat")
        return self

    def fingerprint_view(self) -> dict[str, Any]:
        """The request as an Idempotency-Key compares it (``handler_kit.fingerprints``).

        ``seed`` is absent in the model when not given, but a ``count`` job without it
        runs with seed 0: the same job as one that says ``"seed": 0``.
        """
        view = normalized(self)
        if self.count is not None:
            view["seed"] = self.seed or 0
        return view

    @property
    def total(self) -> int:
        """N, the number of subtasks."""
        return len(self.items) if self.items is not None else int(self.count or 0)

    def values(self) -> list[int]:
        """The subtask inputs: the items, or ``count`` values derived from the seed."""
        if self.items is not None:
            return list(self.items)
        return [seeded_value(self.seed or 0, index) for index in range(self.total)]

    def summary(self) -> dict[str, Any]:
        """What the job item keeps of the request (not the items themselves)."""
        summary: dict[str, Any] = {
            "source": "items" if self.items is not None else "count",
            "fail_indexes": sorted(self.fail_indexes),
            "work_ms": self.work_ms,
        }
        if self.count is not None:
            summary["seed"] = self.seed or 0
        return summary


def seeded_value(seed: int, index: int) -> int:
    """The deterministic input of subtask ``index`` of a ``count``/``seed`` job (0..999).

    A hash, not ``random``, so every Python version and every client computes the same.
    """
    digest = hashlib.sha256(f"{seed}:{index}".encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big") % 1000


class SubtaskMessage(BaseModel):
    """The SQS message body of one subtask.

    Unknown fields are ignored so a newer ventilator can add fields while an older
    worker version still drains the queue.
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    job_id: Annotated[str, Field(pattern=_UUID_RE.pattern)]
    index: _Index
    value: _Value
    fail: bool = False
    work_ms: Annotated[int, Field(ge=0, le=1000)] = 0

    def to_body(self) -> str:
        """Compact JSON; defaults left out to keep 10,000 messages small."""
        return self.model_dump_json(exclude_defaults=True)


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
    aggregate: dict[str, Any] | None = None
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


def parse_job_request(raw: bytes) -> JobRequest:
    """Validate a ``POST /jobs`` body.

    Raises
    ------
    InvalidRequestError
        Empty body, malformed or not strict JSON, N = 0, N over the limit, malformed items.
    """
    if not raw.strip():
        raise InvalidRequestError("request body is required: {'items': [...]} or {'count': N}")
    try:
        return parse_model(JobRequest, raw)
    except ValidationError as exc:
        raise InvalidRequestError(describe_validation_error(exc)) from None


def parse_job_id(value: str) -> str:
    """Return ``value`` as a canonical lower-case UUID string.

    Raises
    ------
    InvalidRequestError
        If it does not look like a UUID.
    """
    if not _UUID_RE.fullmatch(value):
        raise InvalidRequestError("job_id must be a UUID")
    return value.lower()


def parse_subtask_message(body: str) -> SubtaskMessage:
    """Validate an SQS message body.

    Raises
    ------
    InvalidSubtaskMessageError
        If the body is not a subtask message (a poison message).
    """
    try:
        message = parse_model(SubtaskMessage, body)
    except InvalidJsonError as exc:
        raise InvalidSubtaskMessageError(f"invalid subtask message: {exc}") from None
    except ValidationError as exc:
        raise InvalidSubtaskMessageError(
            f"invalid subtask message: {describe_validation_error(exc)}"
        ) from None
    return message.model_copy(update={"job_id": message.job_id.lower()})


# --------------------------------------------------------------------------- storage

# Reserved words (status, total, ...) and readability: every name goes through #name.
_NAMES = ("status", "total", "remaining", "done", "failed", "error", "aggregate")


class JobStore:
    """The job and result tables. Every change of a job is a conditional write.

    Parameters
    ----------
    client : DynamoDBClient
        A low-level boto3 DynamoDB client.
    job_table : str
        Partition key ``job_id`` (S); TTL ``expires_at``; its stream feeds the reducer.
    result_table : str
        Partition key ``job_id`` (S), sort key ``subtask`` (N); TTL ``expires_at``.
    sleep : callable
        Backoff between TransactionConflict retries (injected in tests).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        job_table: str,
        result_table: str,
        *,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._job_table = job_table
        self._result_table = result_table
        self.sleep = sleep

    def _update(
        self, job_id: str, *, update: str, condition: str, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Run a conditional UpdateItem; the new item, or None when the condition failed."""
        return dynamodb.update_if(
            self._client,
            self._job_table,
            {"job_id": {"S": job_id}},
            update=update,
            condition=condition,
            values=values,
            names=_NAMES,
            return_new=True,
        )

    def put_new(self, item: Mapping[str, Any], *, now: datetime) -> bool:
        """Create the job item unless a live one with its ``job_id`` exists (False then).

        A job expired at ``now`` (TTL pending) is replaced as if it were deleted.
        """
        return dynamodb.put_if_absent(
            self._client, self._job_table, item, key_name="job_id", now=now
        )

    def get(self, job_id: str, *, now: datetime) -> dict[str, Any] | None:
        """Strongly consistent read of a job item; None if missing or expired at ``now``."""
        return dynamodb.get_consistent(
            self._client, self._job_table, {"job_id": {"S": job_id}}, now=now
        )

    def record_outcome(
        self,
        message: SubtaskMessage,
        *,
        now: datetime,
        expires_at: int,
        result: int | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> Recorded:
        """Store a subtask's result (or failure) and decrement ``remaining``, atomically.

        One TransactWriteItems: put the (job, subtask) item if it does not exist, and
        ``ADD remaining -1, done|failed +1`` on the job while it is RUNNING, before its
        deadline and with ``remaining > 0``. Either both happen or neither does, so a
        duplicate delivery (the put's condition fails) cannot decrement again. A result
        left expired by an earlier job with the same id (a reused Idempotency-Key) is
        not a duplicate: the put replaces it.

        Raises
        ------
        TransactionConflictError
            Concurrent transactions on the job item kept cancelling this one.
        """
        if (result is None) == (error is None):
            raise ValueError("give exactly one of result or error")
        outcome_item: dict[str, Any] = {
            "job_id": message.job_id,
            "subtask": message.index,
            "value": message.value,
            "recorded_at": iso_timestamp(now),
            "expires_at": expires_at,
        }
        counter = "#done" if result is not None else "#failed"
        if result is not None:
            outcome_item.update(outcome="ok", result=result)
        else:
            outcome_item.update(outcome="failed", error=dict(error or {}))
        update = f"ADD #remaining :minus_one, {counter} :one SET updated_at = :now_iso"
        condition = "#status = :running AND #remaining > :zero AND deadline_epoch > :now"
        transaction = [
            {
                "Put": {
                    "TableName": self._result_table,
                    "Item": dynamodb.to_attribute_values(outcome_item),
                    "ConditionExpression": ttl.absent_condition("job_id"),
                    "ExpressionAttributeValues": dynamodb.to_attribute_values(
                        ttl.condition_values(now)
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": self._job_table,
                    "Key": {"job_id": {"S": message.job_id}},
                    "UpdateExpression": update,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": dynamodb.expression_names(
                        _NAMES, update, condition
                    ),
                    "ExpressionAttributeValues": dynamodb.to_attribute_values(
                        {
                            ":minus_one": -1,
                            ":one": 1,
                            ":zero": 0,
                            ":running": JobStatus.RUNNING.value,
                            ":now": epoch_seconds(now),
                            ":now_iso": iso_timestamp(now),
                        }
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=transaction)
            except ClientError as exc:
                if dynamodb.error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                codes = [reason.get("Code") for reason in reasons]
                if codes[:1] == ["ConditionalCheckFailed"]:
                    existing = dynamodb.from_attribute_values(reasons[0].get("Item") or {})
                    stored_ok = existing.get("outcome") == "ok"
                    return Recorded(RecordOutcome.DUPLICATE, stored_ok=stored_ok)
                if codes[1:2] == ["ConditionalCheckFailed"]:
                    # An expired job item is as good as gone.
                    job = ttl.live(reasons[1].get("Item"), now)
                    return Recorded(
                        RecordOutcome.JOB_CLOSED,
                        job=dynamodb.from_attribute_values(job) if job else None,
                    )
                if "TransactionConflict" not in codes or attempt == TRANSACTION_ATTEMPTS:
                    raise TransactionConflictError(
                        f"transaction for subtask {message.index} of {message.job_id} "
                        f"cancelled: {codes}"
                    ) from exc
                # Full jitter: concurrent workers of one job spread their retries.
                self.sleep(random.uniform(0, 0.05 * 2**attempt))
                continue
            return Recorded(RecordOutcome.RECORDED)
        raise AssertionError("unreachable")  # pragma: no cover

    def mark_timed_out(self, job_id: str, now: datetime) -> bool:
        """RUNNING/REDUCING past the deadline to TIMED_OUT; False if no longer applicable."""
        return (
            self._update(
                job_id,
                update="SET #status = :timed_out, #error = :error, updated_at = :now_iso",
                condition="#status IN (:running, :reducing) AND deadline_epoch <= :now",
                values={
                    ":timed_out": JobStatus.TIMED_OUT.value,
                    ":running": JobStatus.RUNNING.value,
                    ":reducing": JobStatus.REDUCING.value,
                    ":error": _timeout_error(),
                    ":now": epoch_seconds(now),
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )

    def mark_ventilation_failed(self, job_id: str, *, unsent: int, now: datetime) -> bool:
        """RUNNING to FAILED because ``unsent`` subtasks could not be queued."""
        return (
            self._update(
                job_id,
                update="SET #status = :failed, #error = :error, updated_at = :now_iso",
                condition="#status = :running",
                values={
                    ":failed": JobStatus.FAILED.value,
                    ":running": JobStatus.RUNNING.value,
                    ":error": {
                        "code": "ventilation_failed",
                        "message": f"{unsent} subtask(s) could not be queued; submit the job again",
                    },
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )

    def claim_reduction(self, job_id: str, now: datetime) -> dict[str, Any] | None:
        """RUNNING (or REDUCING, a retried reduction) with remaining = 0 to REDUCING.

        Returns
        -------
        dict or None
            The job item, or None if it is not ready, finished, missing or late.
        """
        return self._update(
            job_id,
            update="SET #status = :reducing, updated_at = :now_iso ADD reductions :one",
            condition=(
                "#status IN (:running, :reducing) AND #remaining = :zero AND deadline_epoch > :now"
            ),
            values={
                ":reducing": JobStatus.REDUCING.value,
                ":running": JobStatus.RUNNING.value,
                ":zero": 0,
                ":one": 1,
                ":now": epoch_seconds(now),
                ":now_iso": iso_timestamp(now),
            },
        )

    def finish(
        self,
        job_id: str,
        *,
        status: JobStatus,
        aggregate: Mapping[str, Any],
        error: Mapping[str, Any] | None,
        now: datetime,
    ) -> bool:
        """REDUCING to DONE or FAILED with the aggregate; False if another trigger won."""
        update = "SET #status = :status, #aggregate = :aggregate, updated_at = :now_iso"
        values: dict[str, Any] = {
            ":status": status.value,
            ":aggregate": dict(aggregate),
            ":reducing": JobStatus.REDUCING.value,
            ":now": epoch_seconds(now),
            ":now_iso": iso_timestamp(now),
        }
        if error is not None:
            update += ", #error = :error"
            values[":error"] = dict(error)
        return (
            self._update(
                job_id,
                update=update,
                condition="#status = :reducing AND deadline_epoch > :now",
                values=values,
            )
            is not None
        )

    def iter_results(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Every (job, subtask) item, page by page (a strongly consistent Query).

        Expired ones included (with ``expires_at``): the caller drops them.
        """
        kwargs: dict[str, Any] = {
            "TableName": self._result_table,
            "KeyConditionExpression": "job_id = :job_id",
            "ExpressionAttributeValues": {":job_id": {"S": job_id}},
            "ProjectionExpression": f"subtask, outcome, #result, {ttl.TTL_ATTRIBUTE}",
            "ExpressionAttributeNames": {"#result": "result"},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                yield dynamodb.from_attribute_values(item)
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return
            kwargs["ExclusiveStartKey"] = last_key


def _timeout_error() -> dict[str, str]:
    return {"code": "timed_out", "message": "the job did not finish before its deadline"}


class SubtaskQueue:
    """The SQS subtask queue; only SendMessageBatch is used.

    Parameters
    ----------
    client : SQSClient
        A boto3 SQS client (clients are thread-safe; the ventilator shares one).
    queue_url : str
        URL of the subtask queue.
    """

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send_batch(self, entries: Sequence[tuple[str, str]]) -> list[str]:
        """Send up to 10 ``(entry id, body)``; return the ids SQS reports as failed."""
        response = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[{"Id": entry_id, "MessageBody": body} for entry_id, body in entries],
        )
        return [failure["Id"] for failure in response.get("Failed", [])]


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
    """Send one chunk of at most 10, retrying the entries SQS reports as failed."""
    pending = {str(message.index): message.to_body() for message in chunk}
    calls = 0
    for attempt in range(1, SEND_ATTEMPTS + 1):
        if time_left() <= 0:
            break
        calls += 1
        try:
            failed = queue.send_batch(list(pending.items()))
        except (BotoCoreError, ClientError):
            # The whole call failed (after the SDK's own retries); SQS may have stored
            # some entries, and resending them only makes duplicates the workers absorb.
            logger.warning("SendMessageBatch raised", exc_info=True)
            failed = list(pending)
        pending = {entry_id: pending[entry_id] for entry_id in failed}
        if not pending:
            break
        if attempt < SEND_ATTEMPTS:
            sleep(random.uniform(0, 0.05 * 2**attempt))
    unsent = sorted(int(entry_id) for entry_id in pending)
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

    Entries a call reports as failed are retried (with jittered backoff) up to
    ``SEND_ATTEMPTS`` times; chunks not tried before ``time_left()`` reaches 0 count
    as unsent, so the caller can fail the job before its own timeout.
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


def subtask_messages(job_id: str, request: JobRequest) -> list[SubtaskMessage]:
    """One message per subtask, in index order."""
    failing = set(request.fail_indexes)
    return [
        SubtaskMessage(
            job_id=job_id,
            index=index,
            value=value,
            fail=index in failing,
            work_ms=request.work_ms,
        )
        for index, value in enumerate(request.values())
    ]


def job_view(item: Mapping[str, Any], now: datetime) -> JobView:
    """Client view of a job item; RUNNING/REDUCING past ``deadline_epoch`` reads TIMED_OUT."""
    status = JobStatus(item["status"])
    error = item.get("error")
    if status in (JobStatus.RUNNING, JobStatus.REDUCING) and epoch_seconds(now) >= int(
        item["deadline_epoch"]
    ):
        status, error = JobStatus.TIMED_OUT, _timeout_error()
    return JobView(
        job_id=item["job_id"],
        status=status,
        total=int(item["total"]),
        done=int(item["done"]),
        failed=int(item["failed"]),
        remaining=int(item["remaining"]),
        created_at=item["created_at"],
        updated_at=item.get("updated_at", item["created_at"]),
        aggregate=item.get("aggregate"),
        error=error,
    )


def get_job_view(store: JobStore, job_id: str, *, now: datetime) -> JobView:
    """Read a job for ``GET /jobs/{job_id}`` (never writes).

    Raises
    ------
    JobNotFoundError
        If there is no such job.
    """
    item = store.get(job_id, now=now)
    if item is None:
        raise JobNotFoundError(f"job {job_id} not found")
    return job_view(item, now)


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
    VentilationFailedError
        Some subtasks could not be queued; the job is now FAILED (``ventilation_failed``)
        and results of the subtasks that were sent are refused.
    IdempotencyKeyReusedError
        The key was used before with a different request.
    JobIdCollisionError
        A random job id already existed (practically impossible).
    """
    job_id = resource_id_for(JOB_ID_NAMESPACE, caller, idempotency_key)
    item = new_job_item(
        job_id, request, now=now, settings=settings, idempotency_key=idempotency_key
    )
    first = render(job_view(item, now))
    if idempotency_key is not None:
        # Written with the job, so every retry (also a concurrent one that lost the put)
        # answers these bytes instead of building an answer of its own.
        item["response"] = first.to_json()
    # An expired job with this id (the key's earlier use) is replaced, not replayed.
    if not store.put_new(item, now=now):
        if idempotency_key is None:
            raise JobIdCollisionError(f"job id {job_id} already exists")
        hashes = {item["request_hash"], spelled_fingerprint(request)}
        view, response = _replay(store, job_id, hashes, now, render)
        return Submission(view=view, report=VentilationReport(), created=False, response=response)
    report = ventilate(
        queue,
        subtask_messages(job_id, request),
        concurrency=settings.send_concurrency,
        sleep=sleep,
        time_left=time_left,
    )
    if report.unsent:
        store.mark_ventilation_failed(job_id, unsent=len(report.unsent), now=now)
        raise VentilationFailedError(
            f"{len(report.unsent)} of {request.total} subtasks could not be queued; "
            f"job {job_id} is FAILED, submit it again (with a new Idempotency-Key)"
        )
    return Submission(view=job_view(item, now), report=report, created=True, response=first)


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
    expires_at = epoch_seconds(now()) + settings.retention_days * 86_400
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


def aggregate_results(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum, count, min and max of the successful results; failed indexes listed (capped).

    Returns
    -------
    dict
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
