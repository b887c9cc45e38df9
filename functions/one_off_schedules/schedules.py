"""One-off schedules: records, Scheduler calls, the executor's run and the cleanup.

Everything here is plain Python (no Lambda types) so it can be tested directly: the
handlers in ``schedule_api.py``, ``schedule_executor.py`` and ``schedule_cleanup.py``
only parse events, call these functions and shape responses.

Status transitions are conditional writes in DynamoDB, so a duplicate or late delivery
(every source here delivers at least once) never redoes or undoes finished work::

    PENDING --executor claims--> RUNNING --task done--> DONE
    RUNNING --task failed--> PENDING (lease released; Lambda retries the event)
    PENDING | RUNNING --cleanup, on-failure destination--> FAILED
    PENDING --DELETE /schedules/{id}--> CANCELLED

Each schedule is deleted twice over: the executor's destinations invoke the cleanup,
which deletes it (a schedule already gone counts as done), and the schedule itself
carries ``ActionAfterCompletion: DELETE``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from handler_kit import dynamodb, ttl
from handler_kit.clock import (
    Clock,
    InvalidTimestampError,
    epoch_seconds,
    iso_timestamp,
    parse_timestamp,
    utc_now,
)
from handler_kit.config import int_env, int_fields_from_env, require_env
from handler_kit.errors import IdempotencyKeyReusedError as IdempotencyKeyReusedError
from handler_kit.errors import InvalidRequestError, PayloadTooLargeError
from handler_kit.fingerprints import Instant, request_fingerprint
from handler_kit.requests import describe_validation_error
from handler_kit.responses import StoredResponse
from handler_kit.strict_json import parse_model
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb,scheduler] is installed, Any otherwise
    from mypy_boto3_scheduler.client import EventBridgeSchedulerClient

logger = Logger(child=True)


#: Largest accepted POST body, measured on the raw (base64-decoded) bytes.
MAX_BODY_BYTES = 16 * 1024
#: Largest payload (canonical JSON): it travels in the schedule's target input.
MAX_PAYLOAD_BYTES = 8 * 1024
#: Fixed namespace for deterministic schedule ids derived from an Idempotency-Key.
SCHEDULE_ID_NAMESPACE = uuid.UUID("0d5c1a8e-7b2f-5e43-a9d6-3c4b8e1f2a70")

#: What EventBridge Scheduler substitutes in a target's input when the schedule fires.
CONTEXT_ATTRIBUTES = {
    "schedule_arn": "<aws.scheduler.schedule-arn>",
    "scheduled_time": "<aws.scheduler.scheduled-time>",
    "execution_id": "<aws.scheduler.execution-id>",
    "attempt_number": "<aws.scheduler.attempt-number>",
}

_HEX = "[0-9a-fA-F]"
_UUID_RE = re.compile(rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")
# Printable ASCII only: the key goes into logs and into the uuid5 name.
# arn:<partition>:scheduler:<region>:<account>:schedule/<group>/<name>
_SCHEDULE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:scheduler:[a-z0-9-]+:\d{12}:schedule/"
    r"(?P<group>[0-9a-zA-Z-_.]{1,64})/(?P<name>[0-9a-zA-Z-_.]{1,64})$"
)


# --------------------------------------------------------------------------- errors


class InvalidScheduleTimeError(InvalidRequestError):
    """``at`` is unparseable, has no timezone, is not in the future or is too far ahead."""


class ScheduleNotFoundError(LookupError):
    """No schedule with this id exists (HTTP 404)."""


class ScheduleNotCancellableError(RuntimeError):
    """The schedule already ran or is running (HTTP 409)."""


class ScheduleCreateFailedError(RuntimeError):
    """EventBridge Scheduler refused or failed the CreateSchedule call (HTTP 503)."""


class ScheduleIdCollisionError(RuntimeError):
    """A random schedule id already exists (should never happen with uuid4)."""


class InvalidInvocationError(ValueError):
    """The executor's event is not the input a schedule of this pattern delivers."""


class InvalidDestinationRecordError(ValueError):
    """The cleanup's event is not a Lambda destination record of the executor."""


class ForeignScheduleError(ValueError):
    """A schedule ARN names a group other than this pattern's own."""


class TaskFailedError(Exception):
    """The scheduled task failed; the executor raises it so Lambda retries the event."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ScheduleSettings:
    """Tunables of the API.

    Attributes
    ----------
    horizon_seconds : int
        ``at`` may be at most this far ahead.
    retention_days : int
        The TTL attribute ``expires_at`` is ``at`` + this.
    retry_after_seconds : int
        ``Retry-After`` of a 503.
    undelivered_after_seconds : int
        A record still PENDING this long after ``at`` was never delivered (the
        Scheduler's and Lambda's retry windows are over): it reads FAILED.
    """

    horizon_seconds: int = 365 * 86_400
    retention_days: int = 7
    retry_after_seconds: int = 2
    undelivered_after_seconds: int = 2 * 3600 + 900

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ScheduleSettings:
        """Read ``SCHEDULE_HORIZON_SECONDS``, ``RECORD_RETENTION_DAYS`` and
        ``UNDELIVERED_AFTER_SECONDS``.

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
                    "horizon_seconds": "SCHEDULE_HORIZON_SECONDS",
                    "retention_days": "RECORD_RETENTION_DAYS",
                    "undelivered_after_seconds": "UNDELIVERED_AFTER_SECONDS",
                },
                env,
            ),
        )


@dataclass(frozen=True)
class ScheduleTarget:
    """Where and how a schedule delivers: the executor, the role, retries and the DLQ.

    Attributes
    ----------
    group_name : str
        The pattern's schedule group.
    function_arn : str
        The executor function.
    role_arn : str
        The role EventBridge Scheduler assumes to invoke it.
    dead_letter_queue_arn : str
        Where the Scheduler puts events it could not deliver.
    retry_attempts : int
        Scheduler retries of a failed delivery (0-185).
    max_event_age_seconds : int
        How long the Scheduler keeps retrying (60-86400).
    """

    group_name: str
    function_arn: str
    role_arn: str
    dead_letter_queue_arn: str
    retry_attempts: int = 3
    max_event_age_seconds: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ScheduleTarget:
        """Read the variables the construct sets on the API function.

        Raises
        ------
        KeyError
            If a required variable is missing.
        ValueError
            If a number is malformed.
        """
        env = os.environ if environ is None else environ
        return cls(
            group_name=require_env("SCHEDULE_GROUP_NAME", env),
            function_arn=require_env("EXECUTOR_FUNCTION_ARN", env),
            role_arn=require_env("SCHEDULER_ROLE_ARN", env),
            dead_letter_queue_arn=require_env("SCHEDULE_DEAD_LETTER_QUEUE_ARN", env),
            retry_attempts=int_env(env, "SCHEDULE_RETRY_ATTEMPTS", 3, minimum=0),
            max_event_age_seconds=int_env(env, "SCHEDULE_MAX_EVENT_AGE_SECONDS", 3600),
        )


# --------------------------------------------------------------------------- time


def parse_fire_time(text: str, *, now: datetime, horizon_seconds: int) -> datetime:
    """Validate ``at`` and return it in UTC, rounded up to a whole second.

    EventBridge Scheduler's ``at()`` has second resolution, so ``…:00.2Z`` fires at
    ``…:01Z`` (never before the requested time).

    Parameters
    ----------
    text : str
        ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` with ``Z`` or ``±HH:MM`` (``clock.parse_timestamp``).
    now : datetime
        The current time.
    horizon_seconds : int
        The latest accepted time is ``now`` + this.

    Raises
    ------
    InvalidScheduleTimeError
        Unparseable, without a timezone, not in the future, or beyond the horizon.
    """
    try:
        moment = parse_timestamp(text)
    except InvalidTimestampError:
        # One message for every refusal: the format requires the timezone, because a
        # time without one is ambiguous.
        raise InvalidScheduleTimeError(
            "at must be an ISO-8601 date and time YYYY-MM-DDTHH:MM:SS[.ffffff] with a timezone "
            "(Z or an offset such as +01:00: without one it is ambiguous), e.g. "
            "2025-03-14T10:00:00Z, naming a real date and time"
        ) from None
    try:
        moment = moment.astimezone(UTC)
        if moment.microsecond:
            moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    except OverflowError:
        raise InvalidScheduleTimeError(
            f"at must be at most {horizon_seconds} seconds ahead"
        ) from None
    if moment <= now:
        raise InvalidScheduleTimeError(f"at must be in the future (now is {iso_timestamp(now)})")
    if moment - now > timedelta(seconds=horizon_seconds):
        raise InvalidScheduleTimeError(
            f"at must be at most {horizon_seconds} seconds ahead"
            f" (latest {iso_timestamp(now + timedelta(seconds=horizon_seconds))})"
        )
    return moment


def at_expression(moment: datetime) -> str:
    """The Scheduler expression of a one-time schedule, in UTC: ``at(2025-03-14T10:00:00)``."""
    return f"at({moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


# --------------------------------------------------------------------------- models


class ScheduleStatus(StrEnum):
    """Lifecycle of a schedule record."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_STATUSES = frozenset(
    {ScheduleStatus.DONE, ScheduleStatus.FAILED, ScheduleStatus.CANCELLED}
)


class ScheduleRequest(BaseModel):
    """The validated body of ``POST /schedules``.

    ``outcome`` lets a client ask for a failing task (the simulated work fails every
    attempt), to exercise the failure path.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Compared as the instant it names: ...Z, ...+00:00 and ...+01:00 an hour later agree.
    at: Annotated[str, Field(min_length=1, max_length=64), Instant()]
    payload: dict[str, Any] = Field(default_factory=dict)
    outcome: Literal["succeed", "fail"] = "succeed"


class ScheduledInvocation(BaseModel):
    """The executor's event: the target input after the Scheduler's substitutions.

    Unknown fields are ignored so a newer API can add fields while schedules made by
    an older one still fire.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    schedule_id: Annotated[str, Field(pattern=_UUID_RE.pattern)]
    payload: dict[str, Any]
    outcome: Literal["succeed", "fail"] = "succeed"
    schedule_arn: Annotated[str, Field(pattern=_SCHEDULE_ARN_RE.pattern)]
    scheduled_time: datetime
    execution_id: Annotated[str, Field(min_length=1, max_length=128)]
    # The Scheduler substitutes every attribute as a string ("1").
    attempt_number: Annotated[int, Field(ge=1)]


class DestinationRequestContext(BaseModel):
    """``requestContext`` of a Lambda asynchronous invocation record."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    request_id: str
    function_arn: str
    condition: Literal["Success", "RetriesExhausted", "EventAgeExceeded"]
    approximate_invoke_count: int


class DestinationResponseContext(BaseModel):
    """``responseContext`` of a Lambda asynchronous invocation record."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    status_code: int | None = None
    executed_version: str | None = None
    function_error: str | None = None


class DestinationRecord(BaseModel):
    """What Lambda sends a destination after an asynchronous invocation.

    ``{version, timestamp, requestContext{requestId, functionArn, condition,
    approximateInvokeCount}, requestPayload, responseContext{statusCode,
    executedVersion, functionError}, responsePayload}``; Powertools has no model for it.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    version: str
    timestamp: datetime
    request_context: DestinationRequestContext
    request_payload: Any = None
    response_context: DestinationResponseContext | None = None
    response_payload: Any = None

    @property
    def succeeded(self) -> bool:
        return self.request_context.condition == "Success"


@dataclass(frozen=True)
class ScheduleView:
    """What a client sees of a schedule.

    Attributes
    ----------
    item : dict
        The stored item (plain JSON types).
    undelivered : bool
        The record is PENDING past its delivery deadline: the Scheduler never got the
        event to the executor (it is in the schedule DLQ), so it reads FAILED.
    """

    item: Mapping[str, Any]
    undelivered: bool = False

    @property
    def schedule_id(self) -> str:
        return str(self.item["schedule_id"])

    @property
    def status(self) -> ScheduleStatus:
        if self.undelivered:
            return ScheduleStatus.FAILED
        return ScheduleStatus(self.item["status"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready body: status, the times it reached each state, result or error."""
        item = self.item
        body: dict[str, Any] = {
            "schedule_id": self.schedule_id,
            "status": self.status.value,
            "at": item["at"],
            "created_at": item["created_at"],
            "updated_at": item.get("updated_at", item["created_at"]),
        }
        for when in ("fired_at", "completed_at", "failed_at", "cancelled_at"):
            if when in item:
                body[when] = item[when]
        body["attempts"] = int(item.get("attempts", 0))
        if self.status is ScheduleStatus.DONE:
            body["result"] = item.get("result")
        if self.undelivered:
            body["error"] = {
                "code": "not_delivered",
                "message": "the schedule's event never reached the executor; it is in the "
                "schedule dead-letter queue",
            }
        elif self.status is ScheduleStatus.FAILED:
            body["error"] = item.get("error")
        body["schedule_deleted_at"] = item.get("schedule_deleted_at")
        return body


@dataclass(frozen=True)
class Submission:
    """Outcome of :func:`submit_schedule`; ``created`` is False for an idempotent retry.

    ``response`` is the answer to send: the first answer, also for a retry.
    """

    view: ScheduleView
    created: bool
    response: StoredResponse


#: Builds the ``POST /schedules`` answer of a new schedule (the API owns its shape).
Render = Callable[[ScheduleView], StoredResponse]


class RunOutcome(Enum):
    """What :func:`run_scheduled_task` did with one delivery."""

    COMPLETED = "completed"  # ran and stored DONE
    DUPLICATE = "duplicate"  # already finished or cancelled: nothing done
    IN_PROGRESS = "in_progress"  # another delivery holds a live lease: nothing done
    MISSING = "missing"  # no record (e.g. its create failed): nothing to run
    DISCARDED = "discarded"  # ran, but lost the lease meanwhile: result dropped


class CleanupOutcome(Enum):
    """What :func:`clean_up` found."""

    DELETED = "deleted"  # the schedule existed and is gone now
    ALREADY_GONE = "already_gone"  # deleted before (ActionAfterCompletion, cancel, dup)


# --------------------------------------------------------------------------- parsing


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the stored and hashed form of a payload."""
    # allow_nan=False: the strict parser already refuses NaN; never write it either.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def parse_schedule_request(raw: bytes) -> ScheduleRequest:
    """Validate a ``POST /schedules`` body (the shape; :func:`parse_fire_time` the time).

    Raises
    ------
    InvalidRequestError
        Empty body, malformed JSON, missing, extra or wrongly typed fields.
    PayloadTooLargeError
        The payload's canonical JSON is larger than ``MAX_PAYLOAD_BYTES``.
    """
    if not raw.strip():
        raise InvalidRequestError("request body is required: a JSON object with an 'at' field")
    try:
        request = parse_model(ScheduleRequest, raw)
    except ValidationError as exc:
        raise InvalidRequestError(describe_validation_error(exc)) from None
    if len(canonical_json(request.payload).encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"payload exceeds {MAX_PAYLOAD_BYTES} bytes as JSON")
    return request


def parse_schedule_id(value: str) -> str:
    """Return ``value`` as a canonical lower-case UUID string.

    Raises
    ------
    InvalidRequestError
        If it does not look like a UUID.
    """
    if not _UUID_RE.fullmatch(value):
        raise InvalidRequestError("schedule_id must be a UUID")
    return value.lower()


def parse_schedule_arn(arn: str) -> tuple[str, str]:
    """Split a schedule ARN into (group, name).

    Raises
    ------
    ValueError
        If ``arn`` is not a schedule ARN.
    """
    match = _SCHEDULE_ARN_RE.fullmatch(arn)
    if match is None:
        raise ValueError(f"not an EventBridge Scheduler schedule ARN: {arn[:200]!r}")
    return match["group"], match["name"]


def parse_invocation(event: Any) -> ScheduledInvocation:
    """Validate the executor's event.

    Raises
    ------
    InvalidInvocationError
        If it is not a substituted target input of this pattern, or the ARN's schedule
        name is not the ``schedule_id``.
    """
    try:
        invocation = ScheduledInvocation.model_validate(event)
    except ValidationError as exc:
        raise InvalidInvocationError(
            f"invalid scheduled invocation: {describe_validation_error(exc)}"
        ) from None
    _, name = parse_schedule_arn(invocation.schedule_arn)
    if name.lower() != invocation.schedule_id.lower():
        raise InvalidInvocationError("schedule_arn does not name the schedule of schedule_id")
    return invocation


def parse_destination_record(event: Any) -> DestinationRecord:
    """Validate the cleanup's event.

    Raises
    ------
    InvalidDestinationRecordError
        If it is not a Lambda destination record.
    """
    try:
        return DestinationRecord.model_validate(event)
    except ValidationError as exc:
        raise InvalidDestinationRecordError(
            f"invalid destination record: {describe_validation_error(exc)}"
        ) from None


def request_hash(request: ScheduleRequest) -> str:
    """Fingerprint of the normalized request (``handler_kit.fingerprints``)."""
    return request_fingerprint(request)


def _legacy_request_hash(request: ScheduleRequest) -> str:
    # The hash of records written before requests were normalized (``at`` as spelled);
    # such records live until their time plus the retention, and still match a retry.
    return hashlib.sha256(canonical_json(request.model_dump()).encode("utf-8")).hexdigest()


def schedule_id_for(caller: str, idempotency_key: str | None) -> str:
    """Schedule id (and name): uuid5 over (caller, key) when a key is given, else uuid4."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    # The key is printable ASCII, so the newline cannot be forged from inside it.
    return str(uuid.uuid5(SCHEDULE_ID_NAMESPACE, f"{caller}\n{idempotency_key}"))


# --------------------------------------------------------------------------- storage


class ScheduleStore(dynamodb.KeyedTable):
    """The schedule table. Every status change is a conditional write.

    Parameters
    ----------
    client : DynamoDBClient
        A low-level boto3 DynamoDB client.
    table_name : str
        Table with partition key ``schedule_id`` (S) and TTL attribute ``expires_at``.
    """

    key_name = "schedule_id"
    attribute_names = ("status", "result", "error")
    ttl_attribute = ttl.TTL_ATTRIBUTE

    def delete_unscheduled(self, schedule_id: str) -> bool:
        """Remove a PENDING record whose schedule could not be created."""
        try:
            self._client.delete_item(
                TableName=self._table_name,
                Key=self._key(schedule_id),
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":pending": {"S": ScheduleStatus.PENDING.value}},
            )
        except ClientError as exc:
            if dynamodb.is_condition_failure(exc):
                return False
            raise
        return True

    def claim(
        self,
        schedule_id: str,
        *,
        lease_owner: str,
        lease_expires_epoch: int,
        now: datetime,
        execution_id: str,
    ) -> dict[str, Any] | None:
        """PENDING (or RUNNING with an expired lease) to RUNNING for one delivery.

        A record past its TTL is not claimed: a delivery that late finds it absent.

        Returns
        -------
        dict or None
            The item after the claim, or None if it could not be claimed.
        """
        return self._update_if(
            schedule_id,
            update=(
                "SET #status = :running, lease_owner = :owner, lease_expires_epoch = :lease,"
                " execution_id = :execution, fired_at = if_not_exists(fired_at, :now_iso),"
                " updated_at = :now_iso ADD attempts :one"
            ),
            condition=(
                "(#status = :pending OR (#status = :running AND lease_expires_epoch < :now))"
                f" AND {ttl.unexpired_condition()}"
            ),
            values={
                ":running": ScheduleStatus.RUNNING.value,
                ":pending": ScheduleStatus.PENDING.value,
                ":owner": lease_owner,
                ":lease": lease_expires_epoch,
                ":execution": execution_id,
                ":now": epoch_seconds(now),
                ":now_iso": iso_timestamp(now),
                ":one": 1,
                **ttl.condition_values(now),
            },
            return_new=True,
        )

    def complete(
        self, schedule_id: str, *, lease_owner: str, result: Mapping[str, Any], now: datetime
    ) -> bool:
        """RUNNING to DONE with ``result``, only while this delivery holds the lease."""
        return (
            self._update_if(
                schedule_id,
                update=(
                    "SET #status = :done, #result = :result, completed_at = :now_iso,"
                    " updated_at = :now_iso REMOVE lease_owner, lease_expires_epoch, last_error"
                ),
                condition="#status = :running AND lease_owner = :owner",
                values={
                    ":done": ScheduleStatus.DONE.value,
                    ":running": ScheduleStatus.RUNNING.value,
                    ":result": dict(result),
                    ":owner": lease_owner,
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )

    def release(
        self, schedule_id: str, *, lease_owner: str, error: Mapping[str, Any], now: datetime
    ) -> bool:
        """RUNNING back to PENDING after a failed attempt, so Lambda's retry can claim it."""
        return (
            self._update_if(
                schedule_id,
                update=(
                    "SET #status = :pending, last_error = :error, updated_at = :now_iso"
                    " REMOVE lease_owner, lease_expires_epoch"
                ),
                condition="#status = :running AND lease_owner = :owner",
                values={
                    ":pending": ScheduleStatus.PENDING.value,
                    ":running": ScheduleStatus.RUNNING.value,
                    ":error": dict(error),
                    ":owner": lease_owner,
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )

    def mark_failed(
        self,
        schedule_id: str,
        *,
        error: Mapping[str, Any],
        failure: Mapping[str, Any],
        now: datetime,
    ) -> bool:
        """PENDING/RUNNING to FAILED with the error and the failure record."""
        return (
            self._update_if(
                schedule_id,
                update=(
                    "SET #status = :failed, #error = :error, failure = :failure,"
                    " failed_at = :now_iso, updated_at = :now_iso"
                    " REMOVE lease_owner, lease_expires_epoch"
                ),
                condition="#status IN (:pending, :running)",
                values={
                    ":failed": ScheduleStatus.FAILED.value,
                    ":pending": ScheduleStatus.PENDING.value,
                    ":running": ScheduleStatus.RUNNING.value,
                    ":error": dict(error),
                    ":failure": dict(failure),
                    ":now_iso": iso_timestamp(now),
                },
            )
            is not None
        )

    def cancel(self, schedule_id: str, now: datetime) -> bool:
        """PENDING to CANCELLED; False if the schedule already left PENDING."""
        return (
            self._update_if(
                schedule_id,
                update="SET #status = :cancelled, cancelled_at = :now_iso, updated_at = :now_iso",
                # An expired record is absent: nothing to cancel (the caller answers 404).
                condition=f"#status = :pending AND {ttl.unexpired_condition()}",
                values={
                    ":cancelled": ScheduleStatus.CANCELLED.value,
                    ":pending": ScheduleStatus.PENDING.value,
                    ":now_iso": iso_timestamp(now),
                    **ttl.condition_values(now),
                },
            )
            is not None
        )

    def record_schedule_deleted(self, schedule_id: str, now: datetime) -> bool:
        """Note when the schedule was found deleted (the first time only)."""
        return (
            self._update_if(
                schedule_id,
                update="SET schedule_deleted_at = if_not_exists(schedule_deleted_at, :now_iso)",
                condition="attribute_exists(schedule_id)",
                values={":now_iso": iso_timestamp(now)},
            )
            is not None
        )


class Schedules:
    """The pattern's schedule group in EventBridge Scheduler.

    Parameters
    ----------
    client : EventBridgeSchedulerClient
        A boto3 ``scheduler`` client.
    group_name : str
        The only group this pattern uses.
    """

    def __init__(self, client: EventBridgeSchedulerClient, group_name: str) -> None:
        self._client = client
        self.group_name = group_name

    def create(self, name: str, fire_at: datetime, target: ScheduleTarget, input: str) -> bool:
        """Create the one-time schedule; False if one with this name already exists.

        The name is the schedule id, so an existing schedule is this request's own
        (a retry after a lost response): creating is idempotent.
        """
        try:
            self._client.create_schedule(
                Name=name,
                GroupName=self.group_name,
                ScheduleExpression=at_expression(fire_at),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                State="ENABLED",
                Description="One-off schedule; deleted after it ran",
                Target={
                    "Arn": target.function_arn,
                    "RoleArn": target.role_arn,
                    "Input": input,
                    "RetryPolicy": {
                        "MaximumRetryAttempts": target.retry_attempts,
                        "MaximumEventAgeInSeconds": target.max_event_age_seconds,
                    },
                    "DeadLetterConfig": {"Arn": target.dead_letter_queue_arn},
                },
            )
        except ClientError as exc:
            if dynamodb.error_code(exc) == "ConflictException":
                return False
            raise
        return True

    def delete(self, name: str) -> bool:
        """Delete the schedule; False if it was already gone (which counts as done)."""
        try:
            self._client.delete_schedule(Name=name, GroupName=self.group_name)
        except ClientError as exc:
            if dynamodb.error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True


# --------------------------------------------------------------------------- API logic


def target_input(schedule_id: str, request: ScheduleRequest) -> str:
    """The executor's input: the payload and the Scheduler's context attributes.

    The Scheduler replaces each ``<aws.scheduler.*>`` placeholder when the schedule fires.
    """
    return json.dumps(
        {
            "schedule_id": schedule_id,
            "payload": request.payload,
            "outcome": request.outcome,
            **CONTEXT_ATTRIBUTES,
        },
        separators=(",", ":"),
        # The Scheduler delivers this as the executor's input: it must stay valid JSON.
        allow_nan=False,
    )


def new_schedule_item(
    schedule_id: str,
    request: ScheduleRequest,
    *,
    fire_at: datetime,
    now: datetime,
    settings: ScheduleSettings,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The PENDING item written by ``POST /schedules``."""
    created_at = iso_timestamp(now)
    item: dict[str, Any] = {
        "schedule_id": schedule_id,
        "status": ScheduleStatus.PENDING.value,
        "at": iso_timestamp(fire_at),
        "at_epoch": epoch_seconds(fire_at),
        "created_at": created_at,
        "updated_at": created_at,
        # JSON text: payloads may hold floats, which DynamoDB numbers do not take.
        "payload": canonical_json(request.payload),
        "outcome": request.outcome,
        "request_hash": request_hash(request),
        "attempts": 0,
        "expires_at": epoch_seconds(fire_at) + settings.retention_days * 86_400,
    }
    if idempotency_key is not None:
        item["idempotency_key"] = idempotency_key
    return item


def schedule_view(
    item: Mapping[str, Any], *, now: datetime, settings: ScheduleSettings
) -> ScheduleView:
    """Client view of a stored item; PENDING past its delivery deadline reads FAILED."""
    undelivered = (
        item["status"] == ScheduleStatus.PENDING.value
        and epoch_seconds(now) >= int(item["at_epoch"]) + settings.undelivered_after_seconds
    )
    return ScheduleView(item, undelivered=undelivered)


def get_schedule_view(
    store: ScheduleStore, schedule_id: str, *, now: datetime, settings: ScheduleSettings
) -> ScheduleView:
    """Read a schedule for ``GET /schedules/{id}`` (never writes).

    Raises
    ------
    ScheduleNotFoundError
        If there is no such schedule, or only one past its TTL (not yet deleted).
    """
    item = store.get(schedule_id, now=now)
    if item is None:
        raise ScheduleNotFoundError(f"schedule {schedule_id} not found")
    return schedule_view(item, now=now, settings=settings)


def _create(
    store: ScheduleStore,
    schedules: Schedules,
    item: Mapping[str, Any],
    request: ScheduleRequest,
    fire_at: datetime,
    target: ScheduleTarget,
) -> None:
    schedule_id = str(item["schedule_id"])
    try:
        created = schedules.create(schedule_id, fire_at, target, target_input(schedule_id, request))
    except (BotoCoreError, ClientError):
        logger.exception("CreateSchedule failed", extra={"schedule_id": schedule_id})
        # The schedule may exist anyway (a lost response): if it fires, the executor
        # finds no record and the cleanup deletes it.
        store.delete_unscheduled(schedule_id)
        raise ScheduleCreateFailedError(
            "the schedule could not be created; retry the request"
        ) from None
    if not created:
        logger.info("schedule already existed (retry of this request)", schedule_id=schedule_id)


def submit_schedule(
    store: ScheduleStore,
    schedules: Schedules,
    request: ScheduleRequest,
    *,
    now: datetime,
    settings: ScheduleSettings,
    target: ScheduleTarget,
    caller: str = "anonymous",
    idempotency_key: str | None = None,
    render: Render,
) -> Submission:
    """Store a PENDING record, then create its one-time schedule (``POST /schedules``).

    A keyed record keeps its first answer (``render`` of the new schedule): every retry
    with the key, also a concurrent one that lost the put, is answered those bytes.

    The record is written first so a schedule never fires for a record that does not
    exist; if the create fails the record is removed and the client may retry.

    Raises
    ------
    InvalidScheduleTimeError
        ``at`` is unusable (nothing is written).
    IdempotencyKeyReusedError
        The key was used before with a different request.
    ScheduleCreateFailedError
        CreateSchedule failed (the record is removed again).
    ScheduleIdCollisionError
        A random id already existed (practically impossible).
    """
    schedule_id = schedule_id_for(caller, idempotency_key)
    if idempotency_key is not None:
        # An expired record of this key (TTL pending) is no answer: create anew.
        existing = store.get(schedule_id, now=now)
        if existing is not None:
            return _replay(
                store, schedules, existing, request, now=now, target=target, render=render
            )
    fire_at = parse_fire_time(request.at, now=now, horizon_seconds=settings.horizon_seconds)
    item = new_schedule_item(
        schedule_id,
        request,
        fire_at=fire_at,
        now=now,
        settings=settings,
        idempotency_key=idempotency_key,
    )
    first = render(ScheduleView(item))
    if idempotency_key is not None:
        item["response"] = first.to_json()
    if not store.put_new(item, now=now):
        existing = store.get(schedule_id, now=now)
        if idempotency_key is None or existing is None:
            raise ScheduleIdCollisionError(f"schedule id {schedule_id} already exists")
        # A concurrent request with the same key won the put.
        return _replay(store, schedules, existing, request, now=now, target=target, render=render)
    _create(store, schedules, item, request, fire_at, target)
    return Submission(view=ScheduleView(item), created=True, response=first)


def _replay(
    store: ScheduleStore,
    schedules: Schedules,
    existing: Mapping[str, Any],
    request: ScheduleRequest,
    *,
    now: datetime,
    target: ScheduleTarget,
    render: Render,
) -> Submission:
    """Answer a retry with the same Idempotency-Key: the first answer, from the record."""
    if existing.get("request_hash") not in (request_hash(request), _legacy_request_hash(request)):
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with a different request body"
        )
    fire_at = datetime.fromtimestamp(int(existing["at_epoch"]), UTC)
    if existing["status"] == ScheduleStatus.PENDING.value and fire_at > now:
        # Heals a create that never happened (e.g. the first attempt timed out between
        # the put and the call); CreateSchedule answers Conflict when it did happen.
        _create(store, schedules, existing, request, fire_at, target)
    view = ScheduleView(existing)
    if "response" in existing:
        return Submission(
            view=view, created=False, response=StoredResponse.from_json(existing["response"])
        )
    # A record written before first answers were stored: answer it as first written.
    return Submission(view=view, created=False, response=render(view))


def cancel_schedule(
    store: ScheduleStore, schedules: Schedules, schedule_id: str, *, now: datetime
) -> ScheduleView:
    """Cancel a pending schedule (``DELETE /schedules/{id}``); repeating it is harmless.

    The record turns CANCELLED before the schedule is deleted, so an executor firing in
    between finds it cancelled and does nothing.

    Raises
    ------
    ScheduleNotFoundError
        No such schedule.
    ScheduleNotCancellableError
        It already ran, is running or failed.
    """
    cancelled_now = store.cancel(schedule_id, now)
    item = store.get(schedule_id, now=now)
    if item is None:
        raise ScheduleNotFoundError(f"schedule {schedule_id} not found")
    status = ScheduleStatus(item["status"])
    if status is not ScheduleStatus.CANCELLED:
        raise ScheduleNotCancellableError(
            f"schedule {schedule_id} is {status.value} and can no longer be cancelled"
        )
    if cancelled_now or not item.get("schedule_deleted_at"):
        try:
            schedules.delete(schedule_id)
        except (BotoCoreError, ClientError):
            # Still cancelled: if the schedule fires, the executor finds CANCELLED and
            # does nothing, and ActionAfterCompletion deletes it; a repeated DELETE
            # tries again.
            logger.warning("DeleteSchedule failed on cancel", exc_info=True)
            return ScheduleView(item)
        store.record_schedule_deleted(schedule_id, now)
        item = store.get(schedule_id, now=now) or item
    return ScheduleView(item)


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
    logger.info("schedule claimed", schedule_id=schedule_id, attempts=item.get("attempts"))
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
    """
    schedule_id, name = schedule_of(record, schedules.group_name)
    deleted = schedules.delete(name)
    outcome = CleanupOutcome.DELETED if deleted else CleanupOutcome.ALREADY_GONE
    recorded_failure = False
    if not record.succeeded:
        error, failure = _failure_details(record)
        recorded_failure = store.mark_failed(schedule_id, error=error, failure=failure, now=now)
        if not recorded_failure:
            logger.info("failure record for a schedule no longer pending", schedule_id=schedule_id)
    if not store.record_schedule_deleted(schedule_id, now):
        logger.info("no record for the deleted schedule", schedule_id=schedule_id)
    return outcome, recorded_failure
