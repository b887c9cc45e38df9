"""Recursive S3 batch processor: runs, hops, ranged reads and the simulated work.

Everything here is plain Python (no Lambda types) so it can be tested directly; the
handler in ``batch_processor.py`` only parses the event, calls these functions and
logs the outcome.

A *run* processes one S3 object (newline-delimited JSON) from its first byte to its
last, in *hops*: each hop is one invocation that claims the run, reads the object in
ranged GETs from the checkpointed byte offset, and stops at a line boundary before its
remaining time falls under the safety margin. It then commits a checkpoint with a
conditional write and invokes the function again, asynchronously, for the next hop::

    S3 ObjectCreated --start--> RUNNING (hop 1, offset 0) --dispatch--> hop 1
    hop n: claim --read+process--> commit (hop n+1, offset) --dispatch--> hop n+1
    last hop: write summary --commit--> DONE
    object changed, deleted or unreadable | hop limit | no progress --> FAILED (reason)

Every write that moves the run is conditional on the expected hop and offset and on
the claim (``lease_owner``) of this invocation, so a duplicate or retried invocation of
a hop can neither process it a second time nor fork the chain.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import S3RecordModel
from handler_kit import ttl
from handler_kit.clock import Clock, Sleep, iso_timestamp, utc_now
from handler_kit.config import SettingError, int_fields_from_env, require_env
from handler_kit.dynamodb import KeyedTable
from handler_kit.errors import InvalidRequestError
from handler_kit.strict_json import InvalidJsonError
from handler_kit.strict_json import loads as strict_loads
from line_reader import (
    Line,
    ObjectChangedError,
    ObjectMissingError,
    ObjectRangeReader,
    ObjectUnreadableError,
)
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb,s3,lambda] is installed, Any otherwise
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_s3.client import S3Client

logger = Logger(child=True)

RemainingMillis = Callable[[], int]

#: Marks the payload of a self-invocation (an S3 event has ``Records`` instead).
HOP_REQUEST_KIND: Final = "recursive_processor.hop"
#: Fixed namespace for run ids derived from the S3 event (duplicates map to one run).
RUN_ID_NAMESPACE = uuid.UUID("0b6f1c3e-8d2a-5e47-b9c1-4f3a2d7e6c58")
#: How much of a bad line the errors object keeps.
ERROR_EXCERPT_CHARS = 256
#: A hop keeps at most this many error lines in memory (all are counted).
MAX_ERROR_LINES_PER_HOP = 10_000
_CHECKSUM_MODULUS = 2**64


# --------------------------------------------------------------------------- errors


class InvalidEventError(ValueError):
    """The invocation's event is neither a valid S3 notification nor a hop request."""


#: The run's failure code for each way the object can stop being readable.
_UNREADABLE_CODES: dict[type[Exception], str] = {
    ObjectChangedError: "object_changed",
    ObjectMissingError: "object_missing",
    ObjectUnreadableError: "object_unreadable",
}


#: A required environment variable is missing or invalid (raised at cold start).
MissingSettingError = SettingError


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class ProcessorSettings:
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
    safety_margin_ms: int = 10_000
    max_hops: int = 50
    range_bytes: int = 1024 * 1024
    max_record_bytes: int = 256 * 1024
    record_work_ms: int = 0
    run_retention_days: int = 30

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProcessorSettings:
        """Read the settings the stack gives the function."""
        env = os.environ if environ is None else environ
        prefix = env.get("OUTPUT_PREFIX", "runs/")
        return cls(
            **int_fields_from_env(
                cls,
                {
                    "safety_margin_ms": "SAFETY_MARGIN_MS",
                    "max_hops": "MAX_HOPS",
                    "range_bytes": "RANGE_BYTES",
                    "max_record_bytes": "MAX_RECORD_BYTES",
                    "record_work_ms": "RECORD_WORK_MS",
                    "run_retention_days": "RUN_RETENTION_DAYS",
                },
                env,
                minimums={"safety_margin_ms": 0, "record_work_ms": 0},
            ),
            output_bucket=require_env("OUTPUT_BUCKET_NAME", env),
            output_prefix=prefix if prefix.endswith("/") or not prefix else f"{prefix}/",
        )

    def summary_key(self, run_id: str) -> str:
        """Key of the run's summary object in the output bucket."""
        return f"{self.output_prefix}{run_id}/summary.json"

    def errors_key(self, run_id: str, hop: int) -> str:
        """Key of the bad records one hop found (only hops that found some write one)."""
        return f"{self.output_prefix}{run_id}/errors/hop-{hop:05d}.ndjson"


# --------------------------------------------------------------------------- time


def epoch_ms(moment: datetime) -> int:
    """Whole epoch milliseconds of ``moment``."""
    return math.floor(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- records


class InputRecord(BaseModel):
    """One line of an input object: ``{"id": "<1-128 chars>", "amount": <integer>}``.

    Other fields are ignored, so producers can add some without breaking runs.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=128)
    amount: StrictInt = Field(ge=-(10**12), le=10**12)


@dataclass(frozen=True)
class BadRecord:
    """A line that could not be processed, as the errors object lists it."""

    offset: int
    error: Literal["invalid_json", "invalid_record", "record_too_large", "invalid_encoding"]
    message: str
    excerpt: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "offset": self.offset,
                "error": self.error,
                "message": self.message,
                "excerpt": self.excerpt,
            },
            separators=(",", ":"),
        )


def record_checksum(record: InputRecord) -> int:
    """A 64-bit digest of one record; the run's checksum is their sum modulo 2**64.

    A sum does not depend on the order of hops, and a record processed twice (or
    skipped) changes it, which is what the summary is there to prove.
    """
    digest = hashlib.sha256(f"{record.id}\x00{record.amount}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def parse_line(line: bytes, offset: int) -> InputRecord | BadRecord | None:
    """Parse one line; ``None`` for a blank line (skipped, not an error)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRecord(offset, "invalid_encoding", f"not UTF-8: {exc.reason}", _excerpt(line))
    if not text.strip():
        return None
    try:
        value = strict_loads(text)
    except InvalidJsonError as exc:
        return BadRecord(offset, "invalid_json", str(exc), _excerpt(line))
    try:
        return InputRecord.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {error['msg']}"
            for error in exc.errors()
        )
        return BadRecord(offset, "invalid_record", problems, _excerpt(line))


def _excerpt(line: bytes) -> str:
    # At most 4 bytes per character: decode no more than the excerpt can show.
    text = line[: ERROR_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return text[:ERROR_EXCERPT_CHARS]


@dataclass
class HopTally:
    """What one hop did, added to the run's totals when the hop commits."""

    records: int = 0
    errors: int = 0
    amount: int = 0
    checksum: int = 0
    bytes_read: int = 0
    bad_records: list[BadRecord] = field(default_factory=list)

    def add(self, result: InputRecord | BadRecord) -> None:
        if isinstance(result, BadRecord):
            self.errors += 1
            if len(self.bad_records) < MAX_ERROR_LINES_PER_HOP:
                self.bad_records.append(result)
            return
        self.records += 1
        self.amount += result.amount
        self.checksum += record_checksum(result)


def interpret_line(line: Line, *, max_record_bytes: int) -> InputRecord | BadRecord | None:
    """Turn a line into a record, a bad record, or ``None`` (blank).

    A record over ``max_record_bytes`` is ``record_too_large`` whatever its content
    (even blank): its fate depends on its bytes alone, never on where ranges or hops
    cut the object. The reader already leaves such a line without data; the length
    check here holds for a line read with a higher limit too.
    """
    if line.data is None or len(line.data) > max_record_bytes:
        return BadRecord(
            line.start,
            "record_too_large",
            f"record of {line.length} bytes exceeds the limit of {max_record_bytes} bytes",
            "",
        )
    return parse_line(line.data, line.start)


# --------------------------------------------------------------------------- events


class HopRequest(BaseModel):
    """The payload of a self-invocation: which run, which version, where, which hop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["recursive_processor.hop"] = HOP_REQUEST_KIND
    run_id: str = Field(min_length=1, max_length=64)
    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    etag: str = Field(min_length=1, max_length=128)
    offset: StrictInt = Field(ge=0)
    hop: StrictInt = Field(ge=1)

    def to_payload(self) -> bytes:
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


def is_s3_test_event(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is the ``s3:TestEvent`` S3 may send when a notification is set up."""
    return event.get("Service") == "Amazon S3" and event.get("Event") == "s3:TestEvent"


def is_hop_request(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is a self-invocation (else it should be an S3 notification)."""
    return event.get("kind") == HOP_REQUEST_KIND


def parse_hop_request(event: Mapping[str, Any]) -> HopRequest:
    """Validate a self-invocation payload.

    Raises
    ------
    InvalidEventError
        With the validation problems.
    """
    try:
        return HopRequest.model_validate(dict(event))
    except ValidationError as exc:
        raise InvalidEventError(f"invalid hop request: {exc.errors()}") from exc


def parse_s3_records(event: Mapping[str, Any]) -> tuple[list[ObjectCreated], list[str]]:
    """Every ObjectCreated record of an S3 notification event, and the invalid ones.

    Records of other event types are skipped (the notification only sends
    ObjectCreated; anything else is not this function's business).

    Returns
    -------
    tuple
        The parsed records and a description of each record that did not validate.
    """
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise InvalidEventError("event has no Records and is not a hop request")
    parsed: list[ObjectCreated] = []
    invalid: list[str] = []
    for index, raw in enumerate(records):
        try:
            record = S3RecordModel.model_validate(raw)
        except ValidationError as exc:
            invalid.append(f"record {index}: {exc.error_count()} validation errors")
            continue
        if not record.eventName.startswith("ObjectCreated:"):
            logger.info("skipping a non-ObjectCreated record", event_name=record.eventName)
            continue
        s3_object = record.s3.object
        if s3_object is None or s3_object.size is None or not s3_object.eTag:
            invalid.append(f"record {index}: ObjectCreated without size or eTag")
            continue
        parsed.append(
            ObjectCreated(
                bucket=record.s3.bucket.name,
                # Keys arrive URL-encoded, spaces as '+'.
                key=unquote_plus(s3_object.key),
                size=int(s3_object.size),
                etag=s3_object.eTag.strip('"'),
                sequencer=s3_object.sequencer or "",
            )
        )
    return parsed, invalid


# --------------------------------------------------------------------------- the run table


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


class RunStore(KeyedTable):
    """The run table (partition key ``run_id``). Every change of a run is conditional.

    Parameters
    ----------
    client : DynamoDBClient
        A low-level boto3 DynamoDB client.
    table_name : str
        Table with partition key ``run_id`` (S) and TTL attribute ``expires_at``.
    """

    key_name = "run_id"
    attribute_names = ("status", "offset", "key", "size")
    ttl_attribute = ttl.TTL_ATTRIBUTE

    def _update(
        self, run_id: str, *, update: str, condition: str, values: Mapping[str, Any]
    ) -> bool:
        return (
            self._update_if(run_id, update=update, condition=condition, values=values) is not None
        )

    def create(self, item: Mapping[str, Any], *, now: datetime) -> bool:
        """Store a new run; False if a live run with this id exists (a duplicate event).

        A run expired at ``now`` (TTL pending) is replaced as if it were deleted.
        """
        return self.put_new(item, now=now)

    def claim(
        self, run_id: str, *, hop: int, offset: int, owner: str, now_ms: int, expires_ms: int
    ) -> bool:
        """Take the hop for this invocation until ``expires_ms`` (its deadline).

        Fails while another invocation holds a live claim on the run, so a
        duplicate delivered during the hop does nothing. A claim left by an
        invocation that timed out has expired by the time Lambda retries it.
        """
        return self._update(
            run_id,
            update="SET lease_owner = :owner, lease_expires_ms = :expires",
            condition=(
                "#status = :running AND hop = :hop AND #offset = :offset AND "
                "(attribute_not_exists(lease_owner) OR lease_expires_ms < :now)"
            ),
            values={
                ":owner": owner,
                ":expires": expires_ms,
                ":running": RunStatus.RUNNING.value,
                ":hop": hop,
                ":offset": offset,
                ":now": now_ms,
            },
        )

    def release(self, run_id: str, *, owner: str) -> None:
        """Give the claim back (after an error), so Lambda's retry can take the hop."""
        self._update(
            run_id,
            update="REMOVE lease_owner, lease_expires_ms",
            condition="lease_owner = :owner",
            values={":owner": owner},
        )

    def _owned(self) -> str:
        return "#status = :running AND hop = :hop AND #offset = :offset AND lease_owner = :owner"

    def checkpoint(
        self,
        run_id: str,
        *,
        hop: int,
        offset: int,
        owner: str,
        new_offset: int,
        tally: HopTally,
        errors_key: str | None,
        now: datetime,
    ) -> bool:
        """Commit hop ``hop``: move to ``new_offset`` and hop + 1, add the hop's tally."""
        update = (
            "SET hop = :next, #offset = :new_offset, updated_at = :now "
            "ADD records :records, errors :errors, amount_total :amount, "
            "checksum_sum :checksum, bytes_read :bytes_read "
            "REMOVE lease_owner, lease_expires_ms"
        )
        values: dict[str, Any] = {
            ":next": hop + 1,
            ":new_offset": new_offset,
            ":now": iso_timestamp(now),
            **self._tally_values(tally),
            ":running": RunStatus.RUNNING.value,
            ":hop": hop,
            ":offset": offset,
            ":owner": owner,
        }
        if errors_key is not None:
            update = update.replace(
                "updated_at = :now ",
                "updated_at = :now, error_objects = list_append(error_objects, :errors_key) ",
            )
            values[":errors_key"] = [errors_key]
        return self._update(run_id, update=update, condition=self._owned(), values=values)

    def finish(
        self,
        run_id: str,
        *,
        hop: int,
        offset: int,
        owner: str,
        status: RunStatus,
        new_offset: int,
        tally: HopTally,
        errors_key: str | None,
        now: datetime,
        duration_ms: int,
        summary_key: str | None = None,
        reason: Mapping[str, str] | None = None,
    ) -> bool:
        """End the run DONE or FAILED, adding this hop's tally (empty if discarded)."""
        update = (
            "SET #status = :status, hops = :hop, #offset = :new_offset, updated_at = :now, "
            "finished_at = :now, duration_ms = :duration"
        )
        values: dict[str, Any] = {
            ":status": status.value,
            ":new_offset": new_offset,
            ":now": iso_timestamp(now),
            ":duration": duration_ms,
            ":running": RunStatus.RUNNING.value,
            ":hop": hop,
            ":offset": offset,
            ":owner": owner,
            **self._tally_values(tally),
        }
        if errors_key is not None:
            update += ", error_objects = list_append(error_objects, :errors_key)"
            values[":errors_key"] = [errors_key]
        if summary_key is not None:
            update += ", summary_key = :summary_key"
            values[":summary_key"] = summary_key
        if reason is not None:
            update += ", reason = :reason"
            values[":reason"] = dict(reason)
        update += (
            " ADD records :records, errors :errors, amount_total :amount, "
            "checksum_sum :checksum, bytes_read :bytes_read REMOVE lease_owner, lease_expires_ms"
        )
        return self._update(run_id, update=update, condition=self._owned(), values=values)

    def mark_dispatched(self, run_id: str, *, hop: int) -> None:
        """Record that hop ``hop`` was handed to Lambda (it is not sent again)."""
        self._update(
            run_id,
            update="SET dispatched_hop = :hop",
            condition="dispatched_hop < :hop",
            values={":hop": hop},
        )

    @staticmethod
    def _tally_values(tally: HopTally) -> dict[str, Any]:
        return {
            ":records": tally.records,
            ":errors": tally.errors,
            ":amount": tally.amount,
            ":checksum": tally.checksum,
            ":bytes_read": tally.bytes_read,
        }


# --------------------------------------------------------------------------- continuation


class HopSender(Protocol):
    """Hands a hop to the next invocation."""

    def send(self, request: HopRequest) -> None: ...


class LambdaHopSender:
    """Invokes this function asynchronously (``InvocationType=Event``) with the hop.

    ``function_arn`` comes from the invocation's context (``invoked_function_arn``),
    so the template never needs the function's own ARN in its configuration.
    """

    def __init__(self, client: LambdaClient, function_arn: str) -> None:
        self._client = client
        self._function_arn = function_arn

    def send(self, request: HopRequest) -> None:
        self._client.invoke(
            FunctionName=self._function_arn,
            InvocationType="Event",
            Payload=request.to_payload(),
        )


def _hop_request(item: Mapping[str, Any]) -> HopRequest:
    return HopRequest(
        run_id=item["run_id"],
        bucket=item["bucket"],
        key=item["key"],
        etag=item["etag"],
        offset=int(item["offset"]),
        hop=int(item["hop"]),
    )


def dispatch_pending_hop(store: RunStore, sender: HopSender, item: Mapping[str, Any]) -> bool:
    """Send the run's next hop unless it was sent already; True if it sent it.

    Safe to repeat: a hop sent twice is claimed once. Used right after a commit and
    when a duplicate or retried invocation finds a committed hop whose successor was
    never sent (the invocation that committed it failed before invoking).
    """
    if item["status"] != RunStatus.RUNNING.value:
        return False
    if int(item.get("dispatched_hop", 0)) >= int(item["hop"]):
        return False
    request = _hop_request(item)
    sender.send(request)
    store.mark_dispatched(request.run_id, hop=request.hop)
    logger.info("hop dispatched", run_id=request.run_id, hop=request.hop, offset=request.offset)
    return True


# --------------------------------------------------------------------------- starting runs


def new_run_item(
    created: ObjectCreated, *, now: datetime, settings: ProcessorSettings
) -> dict[str, Any]:
    """The run record of a new run: RUNNING at hop 1, offset 0, nothing counted yet."""
    return {
        "run_id": created.run_id,
        "status": RunStatus.RUNNING.value,
        "bucket": created.bucket,
        "key": created.key,
        "etag": created.etag,
        "size": created.size,
        "sequencer": created.sequencer,
        "hop": 1,
        "offset": 0,
        "dispatched_hop": 0,
        "records": 0,
        "errors": 0,
        "amount_total": 0,
        "checksum_sum": 0,
        "bytes_read": 0,
        "error_objects": [],
        "started_at": iso_timestamp(now),
        "started_at_ms": epoch_ms(now),
        "updated_at": iso_timestamp(now),
        "expires_at": math.floor(now.timestamp()) + settings.run_retention_days * 86_400,
    }


def start_runs(
    store: RunStore,
    sender: HopSender,
    created: Sequence[ObjectCreated],
    *,
    now: datetime,
    settings: ProcessorSettings,
) -> list[str]:
    """Start one run per created object and send each its first hop.

    A duplicate notification finds its run already stored and only re-sends the
    first hop if that was never sent.

    Returns
    -------
    list of str
        The run ids, in record order.
    """
    run_ids = []
    for record in created:
        item = new_run_item(record, now=now, settings=settings)
        if store.create(item, now=now):
            logger.info(
                "run started",
                run_id=record.run_id,
                bucket=record.bucket,
                key=record.key,
                size=record.size,
            )
        else:
            existing = store.get(record.run_id, now=now)
            logger.info("duplicate notification; run exists", run_id=record.run_id)
            if existing is None:  # expired in between: nothing to continue
                continue
            item = existing
        dispatch_pending_hop(store, sender, item)
        run_ids.append(record.run_id)
    return run_ids


# --------------------------------------------------------------------------- hops


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


@dataclass(frozen=True)
class HopEnvironment:
    """What a hop needs from the outside world (injected, so tests can fake it)."""

    store: RunStore
    s3: S3Client
    sender: HopSender
    settings: ProcessorSettings
    remaining_ms: RemainingMillis
    request_id: str
    clock: Clock = utc_now
    sleep: Sleep = time.sleep


def _write_errors(env: HopEnvironment, run_id: str, hop: int, tally: HopTally) -> str | None:
    if not tally.bad_records:
        return None
    key = env.settings.errors_key(run_id, hop)
    body = "".join(f"{bad.to_json()}\n" for bad in tally.bad_records).encode("utf-8")
    env.s3.put_object(
        Bucket=env.settings.output_bucket,
        Key=key,
        Body=body,
        ContentType="application/x-ndjson",
    )
    return key


def summary_document(
    item: Mapping[str, Any],
    tally: HopTally,
    *,
    hops: int,
    finished: datetime,
    error_objects: list[str],
) -> dict[str, Any]:
    """The summary object of a DONE run: totals over every hop plus this last one."""
    checksum = (int(item["checksum_sum"]) + tally.checksum) % _CHECKSUM_MODULUS
    return {
        "run_id": item["run_id"],
        "status": RunStatus.DONE.value,
        "source": {
            "bucket": item["bucket"],
            "key": item["key"],
            "etag": item["etag"],
            "size": int(item["size"]),
        },
        "records": int(item["records"]) + tally.records,
        "errors": int(item["errors"]) + tally.errors,
        "amount_total": int(item["amount_total"]) + tally.amount,
        "checksum": f"{checksum:016x}",
        "hops": hops,
        "bytes_read": int(item["bytes_read"]) + tally.bytes_read,
        "started_at": item["started_at"],
        "finished_at": iso_timestamp(finished),
        "duration_ms": epoch_ms(finished) - int(item["started_at_ms"]),
        "error_objects": error_objects,
    }


def _check_request(request: HopRequest, item: Mapping[str, Any] | None) -> HopOutcome | None:
    """Why this request must not run (an outcome), or None if it is the run's next hop."""
    if item is None:
        return HopOutcome.MISSING
    if (item["bucket"], item["key"], item["etag"]) != (request.bucket, request.key, request.etag):
        return HopOutcome.STALE
    if item["status"] != RunStatus.RUNNING.value or int(item["hop"]) > request.hop:
        return HopOutcome.DUPLICATE
    if int(item["hop"]) < request.hop or int(item["offset"]) != request.offset:
        return HopOutcome.STALE
    return None


def run_hop(env: HopEnvironment, request: HopRequest) -> HopOutcome:
    """Run one hop of a run: claim, read and process, then commit and hand over.

    Parameters
    ----------
    env : HopEnvironment
        Clients, settings, the invocation's remaining time and fakes for time.
    request : HopRequest
        The hop to run.

    Returns
    -------
    HopOutcome
        What happened. Only CONTINUED, DONE and FAILED changed the run.
    """
    store = env.store
    # An expired run reads as missing: its hop is not run (nor its successor re-sent).
    item = store.get(request.run_id, now=env.clock())
    refusal = _check_request(request, item)
    if refusal is not None:
        # The invocation that committed this hop may have failed before sending the next.
        if (
            refusal is HopOutcome.DUPLICATE
            and item is not None
            and int(item["hop"]) == request.hop + 1
            and dispatch_pending_hop(store, env.sender, item)
        ):
            return HopOutcome.REDISPATCHED
        logger.info("hop not run", run_id=request.run_id, hop=request.hop, outcome=refusal.value)
        return refusal
    assert item is not None

    started = env.clock()
    owner = f"{env.request_id}/{uuid.uuid4().hex[:12]}"
    now_ms = epoch_ms(started)
    if not store.claim(
        request.run_id,
        hop=request.hop,
        offset=request.offset,
        owner=owner,
        now_ms=now_ms,
        expires_ms=now_ms + env.remaining_ms(),
    ):
        logger.info("hop held by another invocation", run_id=request.run_id, hop=request.hop)
        return HopOutcome.IN_PROGRESS
    try:
        return _process_claimed(env, request, item, owner)
    except BaseException:
        # Let Lambda's retry of this event take the hop at once instead of waiting
        # for the claim to expire.
        store.release(request.run_id, owner=owner)
        raise


def _process_claimed(
    env: HopEnvironment, request: HopRequest, item: Mapping[str, Any], owner: str
) -> HopOutcome:
    settings = env.settings
    size = int(item["size"])
    reader = ObjectRangeReader(
        env.s3,
        bucket=request.bucket,
        key=request.key,
        etag=request.etag,
        size=size,
        range_bytes=settings.range_bytes,
        max_record_bytes=settings.max_record_bytes,
    )
    tally = HopTally()
    committed = request.offset
    at_end = committed >= size
    lines = reader.lines(request.offset)
    try:
        while not at_end and env.remaining_ms() >= settings.safety_margin_ms:
            line = next(lines, None)
            if line is None:
                at_end = True
                break
            result = interpret_line(line, max_record_bytes=settings.max_record_bytes)
            if result is not None:
                tally.add(result)
                if settings.record_work_ms and isinstance(result, InputRecord):
                    env.sleep(settings.record_work_ms / 1000)
            committed = line.end
            at_end = committed >= size
    except (ObjectChangedError, ObjectMissingError, ObjectUnreadableError) as exc:
        code = _UNREADABLE_CODES[type(exc)]
        # This hop's records belong to no consistent version: keep none of them.
        discarded = HopTally(bytes_read=reader.bytes_read)
        return _fail(env, request, item, owner, discarded, request.offset, code, str(exc))
    finally:
        lines.close()
    tally.bytes_read = reader.bytes_read

    if at_end:
        return _complete(env, request, item, owner, tally, committed)
    if committed == request.offset:
        return _fail(
            env,
            request,
            item,
            owner,
            tally,
            committed,
            "no_progress",
            f"hop {request.hop} processed nothing at byte {committed} of {size}: the safety "
            f"margin ({settings.safety_margin_ms} ms) leaves no time for a record",
        )
    if request.hop >= settings.max_hops:
        errors_key = _write_errors(env, request.run_id, request.hop, tally)
        return _fail(
            env,
            request,
            item,
            owner,
            tally,
            committed,
            "hop_limit",
            f"hop limit {settings.max_hops} reached at byte {committed} of {size}",
            errors_key=errors_key,
        )

    errors_key = _write_errors(env, request.run_id, request.hop, tally)
    now = env.clock()
    if not env.store.checkpoint(
        request.run_id,
        hop=request.hop,
        offset=request.offset,
        owner=owner,
        new_offset=committed,
        tally=tally,
        errors_key=errors_key,
        now=now,
    ):
        logger.warning("lost the claim before the checkpoint", run_id=request.run_id)
        return HopOutcome.LOST_CLAIM
    logger.info(
        "hop committed",
        run_id=request.run_id,
        hop=request.hop,
        offset=committed,
        size=size,
        records=tally.records,
        errors=tally.errors,
        bytes_read=tally.bytes_read,
    )
    next_item = {
        **item,
        "hop": request.hop + 1,
        "offset": committed,
        "dispatched_hop": int(item.get("dispatched_hop", 0)),
    }
    dispatch_pending_hop(env.store, env.sender, next_item)
    return HopOutcome.CONTINUED


def _complete(
    env: HopEnvironment,
    request: HopRequest,
    item: Mapping[str, Any],
    owner: str,
    tally: HopTally,
    committed: int,
) -> HopOutcome:
    errors_key = _write_errors(env, request.run_id, request.hop, tally)
    finished = env.clock()
    error_objects = [*item.get("error_objects", []), *([errors_key] if errors_key else [])]
    summary = summary_document(
        item, tally, hops=request.hop, finished=finished, error_objects=error_objects
    )
    summary_key = env.settings.summary_key(request.run_id)
    # Written before the run says DONE, so DONE always has its summary; a retry of a
    # hop that failed after this write rewrites the same totals.
    env.s3.put_object(
        Bucket=env.settings.output_bucket,
        Key=summary_key,
        Body=json.dumps(summary, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    if not env.store.finish(
        request.run_id,
        hop=request.hop,
        offset=request.offset,
        owner=owner,
        status=RunStatus.DONE,
        new_offset=committed,
        tally=tally,
        errors_key=errors_key,
        now=finished,
        duration_ms=summary["duration_ms"],
        summary_key=summary_key,
    ):
        logger.warning("lost the claim before finishing", run_id=request.run_id)
        return HopOutcome.LOST_CLAIM
    logger.info(
        "run done",
        run_id=request.run_id,
        hops=request.hop,
        records=summary["records"],
        errors=summary["errors"],
        bytes_read=summary["bytes_read"],
        duration_ms=summary["duration_ms"],
    )
    return HopOutcome.DONE


def _fail(
    env: HopEnvironment,
    request: HopRequest,
    item: Mapping[str, Any],
    owner: str,
    tally: HopTally,
    committed: int,
    code: str,
    message: str,
    *,
    errors_key: str | None = None,
) -> HopOutcome:
    finished = env.clock()
    if not env.store.finish(
        request.run_id,
        hop=request.hop,
        offset=request.offset,
        owner=owner,
        status=RunStatus.FAILED,
        new_offset=committed,
        tally=tally,
        errors_key=errors_key,
        now=finished,
        duration_ms=epoch_ms(finished) - int(item["started_at_ms"]),
        reason={"code": code, "message": message},
    ):
        logger.warning("lost the claim before failing the run", run_id=request.run_id)
        return HopOutcome.LOST_CLAIM
    logger.warning(
        "run failed", run_id=request.run_id, hop=request.hop, reason=code, detail=message
    )
    return HopOutcome.FAILED


# --------------------------------------------------------------------------- reading runs


class InvalidRunIdError(InvalidRequestError):
    """The run id in the request is not a UUID (HTTP 400)."""


class RunNotFoundError(LookupError):
    """No run with this id exists, or it expired (HTTP 404)."""


def parse_run_id(raw: str) -> str:
    """The canonical form of a run id (a UUID), or raise ``InvalidRunIdError``."""
    try:
        return str(uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        raise InvalidRunIdError("run_id must be a UUID") from None


def run_view(item: Mapping[str, Any], *, output_bucket: str) -> dict[str, Any]:
    """What ``GET /runs/{run_id}`` shows of a run record.

    Counts are those of the committed hops; ``hops`` is the number of hops run so far
    (the final count once the run has finished).
    """
    status = RunStatus(item["status"])
    finished = status is not RunStatus.RUNNING
    size = int(item["size"])
    offset = int(item["offset"])
    view: dict[str, Any] = {
        "run_id": item["run_id"],
        "status": status.value,
        "source": {
            "bucket": item["bucket"],
            "key": item["key"],
            "etag": item["etag"],
            "size": size,
        },
        "offset": offset,
        "progress": round(offset / size, 4) if size else 1.0,
        "hops": int(item["hops"]) if finished else int(item["hop"]) - 1,
        "records": int(item["records"]),
        "errors": int(item["errors"]),
        "bytes_read": int(item["bytes_read"]),
        "started_at": item["started_at"],
        "updated_at": item["updated_at"],
        "error_objects": [
            {"bucket": output_bucket, "key": key} for key in item.get("error_objects", [])
        ],
    }
    if finished:
        view["finished_at"] = item.get("finished_at")
        view["duration_ms"] = int(item.get("duration_ms", 0))
    if "summary_key" in item:
        view["summary"] = {"bucket": output_bucket, "key": item["summary_key"]}
    if "reason" in item:
        view["reason"] = dict(item["reason"])
    return view


def get_run_view(
    store: RunStore, run_id: str, *, output_bucket: str, now: datetime
) -> dict[str, Any]:
    """The view of one run, or raise ``RunNotFoundError`` (also for one expired at ``now``)."""
    item = store.get(run_id, now=now)
    if item is None:
        raise RunNotFoundError(f"no run {run_id}")
    return run_view(item, output_bucket=output_bucket)
