"""One-off schedules: constants, errors, configuration and the record and event models.

The other modules build on this one: ``schedule_parsing`` (time, ids and event parsing),
``schedule_store`` (DynamoDB and EventBridge Scheduler calls), ``schedule_views`` (what
a client sees of a schedule), ``schedule_service`` (the API's logic) and
``schedule_runs`` (the executor's run and the cleanup). The handlers in
``schedule_api.py``, ``schedule_executor.py`` and ``schedule_cleanup.py`` only parse
events, call those functions and shape responses.

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

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal

from handler_kit.config import EnvSettings, env_int, int_env, require_env
from handler_kit.errors import InvalidRequestError
from handler_kit.fingerprints import Instant
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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
UUID_RE = re.compile(rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")
# Printable ASCII only: the key goes into logs and into the uuid5 name.
# arn:<partition>:scheduler:<region>:<account>:schedule/<group>/<name>
SCHEDULE_ARN_RE = re.compile(
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


class ScheduleStillRunningError(RuntimeError):
    """A failure record met another delivery's live lease; the cleanup is retried."""


class TaskFailedError(Exception):
    """The scheduled task failed; the executor raises it so Lambda retries the event."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ScheduleSettings(EnvSettings):
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

    horizon_seconds: int = env_int(365 * 86_400, "SCHEDULE_HORIZON_SECONDS")
    retention_days: int = env_int(7, "RECORD_RETENTION_DAYS")
    retry_after_seconds: int = 2
    undelivered_after_seconds: int = env_int(2 * 3600 + 900, "UNDELIVERED_AFTER_SECONDS")


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

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    # Compared as the instant it names: ...Z, ...+00:00 and ...+01:00 an hour later agree.
    at: Annotated[str, Field(min_length=1, max_length=64), Instant()]
    payload: dict[str, Any] = Field(default_factory=dict)
    outcome: Literal["succeed", "fail"] = "succeed"


class ScheduledInvocation(BaseModel):
    """The executor's event: the target input after the Scheduler's substitutions.

    Unknown fields are ignored so a newer API can add fields while schedules made by
    an older one still fire.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    schedule_id: Annotated[str, Field(pattern=UUID_RE.pattern)]
    payload: dict[str, Any]
    outcome: Literal["succeed", "fail"] = "succeed"
    schedule_arn: Annotated[str, Field(pattern=SCHEDULE_ARN_RE.pattern)]
    scheduled_time: datetime
    execution_id: Annotated[str, Field(min_length=1, max_length=128)]
    # The Scheduler substitutes every attribute as a string ("1").
    attempt_number: Annotated[int, Field(ge=1)]


class DestinationRequestContext(BaseModel):
    """``requestContext`` of a Lambda asynchronous invocation record."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True
    )

    request_id: str
    function_arn: str
    condition: Literal["Success", "RetriesExhausted", "EventAgeExceeded"]
    approximate_invoke_count: int


class DestinationResponseContext(BaseModel):
    """``responseContext`` of a Lambda asynchronous invocation record."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True
    )

    status_code: int | None = None
    executed_version: str | None = None
    function_error: str | None = None


class DestinationRecord(BaseModel):
    """What Lambda sends a destination after an asynchronous invocation.

    ``{version, timestamp, requestContext{requestId, functionArn, condition,
    approximateInvokeCount}, requestPayload, responseContext{statusCode,
    executedVersion, functionError}, responsePayload}``; Powertools has no model for it.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True
    )

    version: str
    timestamp: datetime
    request_context: DestinationRequestContext
    request_payload: Any = None
    response_context: DestinationResponseContext | None = None
    response_payload: Any = None

    @property
    def succeeded(self) -> bool:
        return self.request_context.condition == "Success"


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
