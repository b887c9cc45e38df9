"""Recursive S3 batch processor: constants, errors, settings and the run's models.

Plain Python (no Lambda types, no AWS clients). The other ``batch_*`` modules hold
the input records, event parsing, the run table, the hand-over, one hop, and starting
and reading runs; the handlers only parse events, call those and shape responses.

A *run* processes one S3 object (newline-delimited JSON) from its first byte to its
last, in *hops*: each hop is one invocation that claims the run, reads the object in
ranged GETs from the checkpointed byte offset, and stops at a line boundary before its
remaining time falls under the safety margin. It then commits a checkpoint with a
conditional write and invokes the function again, asynchronously, for the next hop::

    S3 ObjectCreated --start--> RUNNING (hop 1, offset 0) --dispatch--> hop 1
    hop n: claim --read+process--> commit (hop n+1, offset) --dispatch--> hop n+1
    last hop: write summary --commit--> DONE
    object changed, deleted or unreadable | hop limit | no progress | line too long
        --> FAILED (reason)
    (GET reads a RUNNING run no hop can reach any more as FAILED stalled)

Every write that moves the run is conditional (see ``batch_store.py``).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal, NotRequired, Self

from batch_records import HopTally
from handler_kit.config import EnvSettings, env_int, require_env
from handler_kit.errors import InvalidRequestError
from pydantic import BaseModel, ConfigDict, Field, StrictInt

# typing_extensions' TypedDict, not typing's: pydantic (blocks/openapi_docs.py, offline)
# turns only that one into JSON schema on Python < 3.12.
from typing_extensions import TypedDict

#: Marks the payload of a self-invocation (an S3 event has ``Records`` instead).
HOP_REQUEST_KIND: Final = "recursive_processor.hop"
#: Fixed namespace for run ids derived from the S3 event (duplicates map to one run).
RUN_ID_NAMESPACE = uuid.UUID("0b6f1c3e-8d2a-5e47-b9c1-4f3a2d7e6c58")


# --------------------------------------------------------------------------- errors


class InvalidEventError(ValueError):
    """The invocation's event is neither a valid S3 notification nor a hop request."""


class HopHeldByEarlierAttemptError(RuntimeError):
    """An earlier attempt of this very event (same request id) holds the hop's claim.

    Raised so Lambda retries the event later, and after its retries sends it to the
    failure queue (alarmed), rather than the event being used up with the run RUNNING.
    """


class InvalidRunIdError(InvalidRequestError):
    """The run id in the request is not a UUID (HTTP 400)."""


class RunNotFoundError(LookupError):
    """No run with this id exists, or it expired (HTTP 404)."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class ProcessorSettings(EnvSettings):
    """How the processor reads, when it hands over, and where it writes.

    Attributes
    ----------
    output_bucket : str
        Bucket of the summary and errors objects.
    output_prefix : str
        Key prefix of every output object, e.g. ``runs/``.
    safety_margin_ms : int
        A hop stops taking records when less than this much time remains; it must
        cover the longest record plus the checkpoint, the outputs and the invoke.
    max_hops : int
        A run that needs more hops stops FAILED (``hop_limit``).
    range_bytes : int
        Size of one ranged GET; with ``max_record_bytes`` it bounds the memory a hop
        uses, whatever the size of the object.
    max_record_bytes : int
        The largest record read (inclusive; counted without the line end). A longer
        one is skipped and counted as a bad record (``record_too_large``) wherever it
        sits in the object (see ``line_reader``).
    record_work_ms : int
        Simulated work per record (0 in production); tests and the local stage use
        it to make a small file need several hops.
    run_retention_days : int
        Run records expire (DynamoDB TTL) this long after they start.
    """

    output_bucket: str
    output_prefix: str = "runs/"
    safety_margin_ms: int = env_int(10_000, "SAFETY_MARGIN_MS", minimum=0)
    max_hops: int = env_int(50, "MAX_HOPS")
    range_bytes: int = env_int(1024 * 1024, "RANGE_BYTES")
    max_record_bytes: int = env_int(256 * 1024, "MAX_RECORD_BYTES")
    record_work_ms: int = env_int(0, "RECORD_WORK_MS", minimum=0)
    run_retention_days: int = env_int(30, "RUN_RETENTION_DAYS")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **fields: Any) -> Self:
        """The settings the stack gives the function; ``output_prefix`` always ends with
        ``/`` unless empty.

        Raises
        ------
        SettingError
            ``OUTPUT_BUCKET_NAME`` is missing (``MissingSettingError``), or a number is
            invalid or too small (``InvalidSettingError``).
        """
        env = os.environ if environ is None else environ
        prefix = env.get("OUTPUT_PREFIX", "runs/")
        return super().from_env(
            env,
            output_bucket=require_env("OUTPUT_BUCKET_NAME", env),
            output_prefix=prefix if prefix.endswith("/") or not prefix else f"{prefix}/",
            **fields,
        )

    def summary_key(self, run_id: str) -> str:
        """Key of the run's summary object in the output bucket."""
        return f"{self.output_prefix}{run_id}/summary.json"

    def errors_key(self, run_id: str, hop: int) -> str:
        """Key of the bad records one hop found (only hops that found some write one)."""
        return f"{self.output_prefix}{run_id}/errors/hop-{hop:05d}.ndjson"


def epoch_ms(moment: datetime) -> int:
    """Whole epoch milliseconds of ``moment``."""
    return math.floor(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- outcomes


class RunStatus(StrEnum):
    """Where a run stands: RUNNING until a hop ends it DONE or FAILED."""

    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


class RunSource(TypedDict):
    """The object a run reads: the version it started on (``etag``) and its size."""

    bucket: str
    key: str
    etag: str
    size: int


class OutputObject(TypedDict):
    """An object a run wrote (its summary, or a part of its bad records)."""

    bucket: str
    key: str


class RunFailure(TypedDict):
    """Why a run ended FAILED."""

    code: str
    message: str


class RunBody(TypedDict):
    """The body of ``GET /runs/{run_id}``: the counts of the committed hops;
    ``finished_at`` and ``duration_ms`` once the run ended, ``summary`` once DONE,
    ``reason`` once FAILED (a run read as FAILED ``stalled`` never ended: it has no
    ``finished_at`` or ``duration_ms``)."""

    run_id: str
    status: RunStatus
    source: RunSource
    offset: int
    progress: float
    hops: int
    records: int
    errors: int
    bytes_read: int
    started_at: str
    updated_at: str
    error_objects: list[OutputObject]
    finished_at: NotRequired[str | None]
    duration_ms: NotRequired[int]
    summary: NotRequired[OutputObject]
    reason: NotRequired[RunFailure]


class HopOutcome(StrEnum):
    """What one invocation of a hop did."""

    CONTINUED = "continued"  # committed and sent the next hop
    DONE = "done"  # processed the last byte; the summary is written
    FAILED = "failed"  # the run stopped FAILED (see its reason)
    DUPLICATE = "duplicate"  # the hop was committed or the run finished already
    IN_PROGRESS = "in_progress"  # another invocation holds the hop
    REDISPATCHED = "redispatched"  # the hop was done but its successor never sent
    STALE = "stale"  # the request does not match the run (hop, offset or version)
    MISSING = "missing"  # no such run (expired)
    LOST_CLAIM = "lost_claim"  # the commit's condition failed; nothing was kept


# --------------------------------------------------------------------------- events


class HopRequest(BaseModel):
    """The payload of a self-invocation: which run, which version, where, which hop."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: Literal["recursive_processor.hop"] = HOP_REQUEST_KIND
    run_id: str = Field(min_length=1, max_length=64)
    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    etag: str = Field(min_length=1, max_length=128)
    offset: StrictInt = Field(ge=0)
    hop: StrictInt = Field(ge=1)

    def to_payload(self) -> bytes:
        """The request as the JSON payload of an asynchronous invoke."""
        return self.model_dump_json().encode("utf-8")


@dataclass(frozen=True)
class ObjectCreated:
    """The part of an S3 ObjectCreated record a run needs."""

    bucket: str
    key: str
    size: int
    etag: str
    sequencer: str

    @property
    def run_id(self) -> str:
        """Deterministic: a duplicate notification of the same write maps to the same run."""
        name = f"{self.bucket}\n{self.key}\n{self.etag}\n{self.sequencer}"
        return str(uuid.uuid5(RUN_ID_NAMESPACE, name))


# --------------------------------------------------------------------------- hop state


@dataclass(frozen=True, kw_only=True)
class HopState:
    """One claimed hop of a run, as the hop's steps pass it along.

    Built from the run record read before the claim, which the hop request matched
    (same object version, hop and offset). The store's conditional writes use
    ``run_id``, ``hop``, ``offset`` and ``owner``; the run's totals so far go into the
    summary of the last hop.

    Attributes
    ----------
    run_id, bucket, key, etag : str
        The run and the object version it reads.
    size : int
        The object's size in bytes.
    hop : int
        This hop's number (1-based).
    offset : int
        The byte the hop starts at: the offset the previous hop committed.
    owner : str
        The claim (``lease_owner``) this invocation holds on the hop.
    started_at : str
        When the run started (ISO 8601).
    started_at_ms : int
        The same, in epoch milliseconds.
    records, errors, amount_total, checksum_sum, bytes_read : int
        The totals of the hops committed before this one.
    error_objects : tuple of str
        The errors objects of those hops.
    """

    run_id: str
    bucket: str
    key: str
    etag: str
    size: int
    hop: int
    offset: int
    owner: str
    started_at: str
    started_at_ms: int
    records: int
    errors: int
    amount_total: int
    checksum_sum: int
    bytes_read: int
    error_objects: tuple[str, ...]

    @classmethod
    def of(cls, item: Mapping[str, Any], *, owner: str) -> HopState:
        """The state of the run record ``item``'s next hop, claimed by ``owner``."""
        return cls(
            run_id=item["run_id"],
            bucket=item["bucket"],
            key=item["key"],
            etag=item["etag"],
            size=int(item["size"]),
            hop=int(item["hop"]),
            offset=int(item["offset"]),
            owner=owner,
            started_at=item["started_at"],
            started_at_ms=int(item["started_at_ms"]),
            records=int(item["records"]),
            errors=int(item["errors"]),
            amount_total=int(item["amount_total"]),
            checksum_sum=int(item["checksum_sum"]),
            bytes_read=int(item["bytes_read"]),
            error_objects=tuple(item.get("error_objects", [])),
        )

    def next_request(self, offset: int) -> HopRequest:
        """The request of the hop after this one, starting at ``offset``."""
        return HopRequest(
            run_id=self.run_id,
            bucket=self.bucket,
            key=self.key,
            etag=self.etag,
            offset=offset,
            hop=self.hop + 1,
        )


@dataclass(frozen=True, kw_only=True)
class HopCommit:
    """What a hop adds to its run when it commits: the new offset and its tally.

    Attributes
    ----------
    new_offset : int
        The byte after the last line the hop processed.
    tally : HopTally
        The hop's counts (empty if its records were discarded).
    errors_key : str or None
        The hop's errors object, if it wrote one.
    now : datetime
        When the hop commits.
    """

    new_offset: int
    tally: HopTally
    errors_key: str | None
    now: datetime


@dataclass(frozen=True, kw_only=True)
class RunEnding:
    """How a run ends: DONE with its summary, or FAILED with a reason.

    Attributes
    ----------
    status : RunStatus
        DONE or FAILED.
    duration_ms : int
        From the run's start to its end.
    summary_key : str or None
        The summary object (DONE only).
    reason : Mapping of str to str or None
        ``{"code", "message"}`` (FAILED only).
    """

    status: RunStatus
    duration_ms: int
    summary_key: str | None = None
    reason: Mapping[str, str] | None = None
