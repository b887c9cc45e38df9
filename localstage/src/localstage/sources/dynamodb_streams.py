"""DynamoDB stream event source mappings, with Lambda's semantics.

- The stream is read with the function's role (as Lambda does: the role needs
  ``dynamodb:DescribeStream``, ``GetShardIterator`` and ``GetRecords``), one poller per
  shard and one batch in flight per shard, so records of a shard reach the function in
  order (``ParallelizationFactor`` above 1 is run as 1: stricter ordering than AWS).
  An idle poller reads every few seconds, but any DynamoDB write wakes it once its
  pause has lasted 0.25 s (:mod:`localstage.activity`).
- ``StartingPosition`` ``TRIM_HORIZON`` (everything the stream holds) or ``LATEST``
  (records written after the stage booted); ``BatchSize`` (default 100);
  ``MaximumBatchingWindowInSeconds`` (stage time); ``Enabled``.
- ``FilterCriteria``: EventBridge pattern syntax applied to the record as the function
  would receive it, on its ``dynamodb`` key only (AWS refuses a filter on another key,
  ``eventName`` included, and so does the boot). Records no filter matches are dropped
  and never retried.
- A function error (or timeout) retries the batch. ``BisectBatchOnFunctionError``
  splits a failing batch in two first (splits do not count as retries).
  ``ReportBatchItemFailures``: a response naming sequence numbers checkpoints at the
  lowest one (the records before it are done; that record and the rest are retried);
  an empty list means success, an unknown or empty identifier fails the whole batch.
- ``MaximumRetryAttempts`` and ``MaximumRecordAgeInSeconds`` (both -1 = unlimited,
  record age in stage time): records given up on are skipped and, with an
  ``OnFailure`` destination (SQS queue or SNS topic), described there in Lambda's
  invocation-record shape (``DDBStreamBatchInfo``, no record data), sent with the
  function's role.
- A batch throttled by the function's reserved concurrency (all busy, or 0) is retried
  with back-off, the shard waiting, until it runs or its records pass
  ``MaximumRecordAgeInSeconds``; throttles use none of ``MaximumRetryAttempts``.
- moto emits two INSERT records for an ``UpdateItem`` that creates an item (the first
  with the keys only); AWS emits one, so the first one is dropped here.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from localstage.activity import Wakeup
from localstage.events import dynamodb_stream_record
from localstage.runtime import FunctionThrottledError
from localstage.sources import (
    EventSource,
    InvalidMappingError,
    event_source,
    mappings_from,
    report_once,
)
from localstage.sources.event_patterns import matches
from localstage.sources.event_patterns import parse as parse_pattern
from localstage.throttling import throttle_backoff

if TYPE_CHECKING:
    from localstage.deploy import Resource
    from localstage.runtime import FunctionRuntime, InvocationResult
    from localstage.stage_view import StageView

DEFAULT_BATCH_SIZE = 100
#: Records read per GetRecords call (AWS's maximum).
READ_LIMIT = 1000
#: Between empty reads: from the first to the last, doubling (a DynamoDB write wakes it).
IDLE_POLL_SECONDS = (0.05, 2.0)
#: Pauses up to this long are waited out whatever is written meanwhile.
PACED_POLL_SECONDS = 0.25
#: Back-off between retries of a failing batch, in stage seconds (doubling, capped).
RETRY_BACKOFF_SECONDS = (1.0, 30.0)


@event_source("dynamodb")
def dynamodb_stream_mappings(stage: StageView) -> list[EventSource]:
    return [
        DynamoDBStreamMapping(stage, mapping, function)
        for mapping, function in mappings_from(stage, "dynamodb")
    ]


# ---------------------------------------------------------------------- pure rules


def drop_moto_duplicate_inserts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Remove the first of two consecutive INSERTs of the same item (a moto artefact).

    moto writes both records in one request, so a read that is caught up holds both;
    on AWS two INSERTs of one key without a REMOVE between them cannot happen.
    """
    kept: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        following = records[index + 1] if index + 1 < len(records) else None
        if (
            following is not None
            and record.get("eventName") == "INSERT"
            and following.get("eventName") == "INSERT"
            and record["dynamodb"].get("Keys") == following["dynamodb"].get("Keys")
        ):
            continue
        kept.append(record)
    return kept


def first_failed_index(
    sequence_numbers: list[str], payload: Any, *, errored: bool, report_item_failures: bool
) -> int | None:
    """Where the retry of a batch starts after the function answered; None: all done.

    A function error fails the whole batch (0). With ``ReportBatchItemFailures`` the
    lowest reported sequence number is the checkpoint; a response that is not an
    object (``null`` is a success), a ``batchItemFailures`` that is not a list, or a
    report naming a sequence number that is not in the batch, or an empty one, fails
    the whole batch.
    """
    if errored:
        return 0
    if not report_item_failures or payload is None:
        return None
    failures = payload.get("batchItemFailures") if isinstance(payload, dict) else None
    # Success is an empty or null list, or no list at all (AWS's documented cases); a
    # falsy non-list (``{}``, ``""``, ``0``, ``false``) is not one of them.
    if isinstance(payload, dict) and (failures is None or failures == []):
        return None
    if not isinstance(failures, list):
        # Not a response Lambda can read: the whole batch failed.
        return 0
    positions = {number: index for index, number in enumerate(sequence_numbers)}
    lowest: int | None = None
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return 0
        index = positions[identifier]
        lowest = index if lowest is None else min(lowest, index)
    return lowest


_SECONDS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _created(record: dict[str, Any]) -> datetime:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        return created
    if isinstance(created, int | float):
        return datetime.fromtimestamp(created, tz=UTC)
    return datetime.now(UTC)


def stream_failure_record(
    *,
    records: list[dict[str, Any]],
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    last_result: InvocationResult | None,
    now: datetime,
) -> dict[str, Any]:
    """What Lambda sends to a stream mapping's on-failure destination (no record data)."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if last_result is not None and last_result.error is not None:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": last_result.request_id if last_result else str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(now),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _created(records[0]).strftime(_SECONDS_FORMAT),
            "approximateArrivalOfLastRecord": _created(records[-1]).strftime(_SECONDS_FORMAT),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


# ---------------------------------------------------------------------- the mapping


class DynamoDBStreamMapping:
    """Polls one table stream and invokes one function with batches of its records."""

    def __init__(self, stage: StageView, mapping: Resource, function: FunctionRuntime) -> None:
        props = mapping.properties
        self.stage = stage
        self.function = function
        self.stream_arn: str = props["EventSourceArn"]
        self.batch_size = int(props.get("BatchSize", DEFAULT_BATCH_SIZE))
        self.batching_window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        self.starting_position = str(props.get("StartingPosition", "LATEST"))
        if self.starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise NotImplementedError(
                f"{mapping.logical_id}: StartingPosition {self.starting_position} is not "
                "emulated for DynamoDB streams"
            )
        if props.get("TumblingWindowInSeconds"):
            raise NotImplementedError(f"{mapping.logical_id}: tumbling windows are not emulated")
        self.max_retries = int(props.get("MaximumRetryAttempts", -1))
        self.max_record_age = float(props.get("MaximumRecordAgeInSeconds", -1))
        self.bisect = str(props.get("BisectBatchOnFunctionError", False)).lower() == "true"
        self.report_item_failures = "ReportBatchItemFailures" in (
            props.get("FunctionResponseTypes") or []
        )
        self.enabled = str(props.get("Enabled", True)).lower() != "false"
        self.filters = [
            parse_pattern(entry["Pattern"])
            for entry in ((props.get("FilterCriteria") or {}).get("Filters") or [])
        ]
        # "DynamoDB event source mappings only support filtering on the dynamodb key"
        # (Lambda's DynamoDB filtering page): a filter on eventName would be refused.
        for pattern in self.filters:
            if set(pattern) - {"dynamodb"}:
                raise InvalidMappingError(
                    f"{mapping.logical_id}: FilterCriteria on {sorted(set(pattern))}: "
                    "DynamoDB stream mappings filter on the dynamodb key only"
                )
        destination = (((props.get("DestinationConfig") or {}).get("OnFailure")) or {}).get(
            "Destination"
        )
        self.on_failure: str | None = destination
        table = stage.deployment.resources("AWS::DynamoDB::Table") + stage.deployment.resources(
            "AWS::DynamoDB::GlobalTable"
        )
        table_name = next(
            (t.physical_id for t in table if t.attributes.get("StreamArn") == self.stream_arn),
            self.stream_arn.split("/")[1],
        )
        self.description = (
            f"DynamoDB stream {table_name} -> {function.spec.label} (batch {self.batch_size}, "
            f"{self.starting_position}, {len(self.filters)} filter(s), retries "
            f"{self.max_retries}, bisect {self.bisect})"
        )
        credentials = function.spec.credentials
        self._streams = stage.cloud.client("dynamodbstreams", credentials)
        self._sqs = stage.cloud.client("sqs", credentials)
        self._sns = stage.cloud.client("sns", credentials)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wakeups: list[Wakeup] = []
        #: Counters tests and ``describe`` may read.
        self.batches = 0
        self.discarded_batches = 0
        self.filtered_out = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if not self.enabled:
            return
        try:
            shards = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
                "Shards"
            ]
        except Exception as error:
            self._report(f"DescribeStream failed: {error}")
            return
        for shard in shards:
            # Iterators are taken now: LATEST means "after the mapping was created".
            try:
                iterator = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard["ShardId"],
                    ShardIteratorType=self.starting_position,
                )["ShardIterator"]
            except Exception as error:
                self._report(f"GetShardIterator failed: {error}")
                continue
            # One per shard: a thread that waits clears its wakeup.
            wakeup = self.stage.activity.wakeup("dynamodb")
            self._wakeups.append(wakeup)
            thread = threading.Thread(
                target=self._run_shard,
                args=(shard["ShardId"], iterator, wakeup),
                daemon=True,
                name="ddb-stream-poller",
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for wakeup in self._wakeups:
            wakeup.set()
        for thread in self._threads:
            thread.join(timeout=5)

    # ------------------------------------------------------------------ polling

    def _read(self, iterator: str) -> tuple[list[dict[str, Any]], str]:
        """Every record available now (so both moto twins of an INSERT are read together)."""
        records: list[dict[str, Any]] = []
        while not self._stop.is_set():
            response = self._streams.get_records(ShardIterator=iterator, Limit=READ_LIMIT)
            iterator = response.get("NextShardIterator") or iterator
            got = response.get("Records") or []
            records.extend(got)
            if len(got) < READ_LIMIT:
                break
        return drop_moto_duplicate_inserts(records), iterator

    def _wanted(self, record: dict[str, Any]) -> bool:
        if not self.filters:
            return True
        return any(matches(pattern, record) for pattern in self.filters)

    def _run_shard(self, shard_id: str, iterator: str, wakeup: Wakeup) -> None:
        clock = self.stage.clock
        pending: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (raw, lambda-shaped)
        planned_sizes: list[int] = []  # batch sizes after a bisection
        failing_head: str | None = None
        attempts = 0
        invokes = 0
        throttles = 0  # in a row, for the back-off
        last_result: InvocationResult | None = None
        window_started: float | None = None
        # Duplicate delivery mode: the size of a batch that succeeded and is delivered
        # once more before the checkpoint moves (None: no replay due).
        replay: int | None = None
        idle = IDLE_POLL_SECONDS[0]
        while not self._stop.is_set():
            try:
                fresh, iterator = self._read(iterator)
            except Exception as error:
                self._report(f"GetRecords failed: {error}")
                self._stop.wait(IDLE_POLL_SECONDS[1])
                continue
            for raw in fresh:
                shaped = dynamodb_stream_record({**raw, "eventVersion": "1.1"}, self.stream_arn)
                if self._wanted(shaped):
                    pending.append((raw, shaped))
                else:
                    self.filtered_out += 1
            if not pending:
                window_started = None
                # Up to PACED_POLL_SECONDS the pause is not cut short: under a stream of
                # writes, a wake per write would read one record at a time. Longer idle
                # pauses end at the next write.
                paced = min(idle, PACED_POLL_SECONDS)
                self._stop.wait(paced)
                if idle > paced:
                    wakeup.wait(idle - paced)
                idle = min(idle * 2, IDLE_POLL_SECONDS[1])
                continue
            idle = IDLE_POLL_SECONDS[0]
            limit = replay or (planned_sizes[0] if planned_sizes else self.batch_size)
            if window_started is None:
                window_started = clock.time()
            if (
                len(pending) < limit
                and failing_head is None
                and replay is None
                and not throttles
                and clock.time() < window_started + self.batching_window
            ):
                self._stop.wait(0.05)
                continue
            window_started = None

            # Records past their maximum age are given up on before any invocation.
            expired = self._expired_prefix(pending[:limit])
            if expired:
                self._discard(
                    [raw for raw, _ in pending[:expired]],
                    shard_id,
                    "RecordAgeExceeded",
                    invokes,
                    last_result,
                )
                pending = pending[expired:]
                planned_sizes.clear()
                replay = None
                throttles = 0
                failing_head, attempts, invokes, last_result = None, 0, 0, None
                continue

            batch = pending[:limit]
            self.batches += 1
            try:
                result = self.function.invoke(
                    {"Records": [shaped for _, shaped in batch]}, throttle=True
                )
            except FunctionThrottledError:
                # The shard waits and retries: only the record age ends a throttled batch,
                # a throttle uses no retry attempt (localstage/throttling.py).
                throttles += 1
                self._report("throttled by the function's reserved concurrency")
                clock.sleep(throttle_backoff(throttles, RETRY_BACKOFF_SECONDS))
                continue
            except RuntimeError as error:  # the function was shut down with the stage
                self._report(f"invoke failed: {error}")
                return
            throttles = 0
            invokes += 1
            last_result = result
            numbers = [raw["dynamodb"]["SequenceNumber"] for raw, _ in batch]
            failed_at = first_failed_index(
                numbers,
                result.payload,
                errored=result.error is not None,
                report_item_failures=self.report_item_failures,
            )
            if failed_at is None:
                if self.stage.delivery.duplicates and replay is None:
                    # As when Lambda retries a batch it already ran: the same records
                    # again, in order, before any later one (order per shard is kept).
                    replay = len(batch)
                    continue
                replay = None
                pending = pending[len(batch) :]
                if planned_sizes:
                    planned_sizes.pop(0)
                failing_head, attempts, invokes, last_result = None, 0, 0, None
                continue
            if result.error is not None:
                self._report(f"batch failed: {result.error.get('errorType')}")
            # Records before the checkpoint are done.
            pending = pending[failed_at:]
            remaining = len(batch) - failed_at
            if replay is not None:
                # A failed replay is retried like any batch: its records ran once already.
                replay = remaining
            if failed_at > 0 and planned_sizes:
                planned_sizes[0] = remaining
            if result.error is not None and self.bisect and remaining > 1:
                replay = None
                # Split in two; a split is not a retry.
                half = remaining // 2
                planned_sizes[:1] = [half, remaining - half]
                invokes = 0  # counted per batch, and the batch is a new one
                continue
            head = pending[0][0]["dynamodb"]["SequenceNumber"]
            attempts = attempts + 1 if head == failing_head else 1
            failing_head = head
            if 0 <= self.max_retries < attempts:
                given_up = pending[:remaining]
                self._discard(
                    [raw for raw, _ in given_up],
                    shard_id,
                    "RetryAttemptsExhausted",
                    invokes,
                    last_result,
                )
                pending = pending[remaining:]
                replay = None
                if planned_sizes:
                    planned_sizes.pop(0)
                failing_head, attempts, invokes, last_result = None, 0, 0, None
                continue
            backoff = min(RETRY_BACKOFF_SECONDS[0] * 2 ** (attempts - 1), RETRY_BACKOFF_SECONDS[1])
            clock.sleep(backoff)

    def _expired_prefix(self, batch: list[tuple[dict[str, Any], dict[str, Any]]]) -> int:
        if self.max_record_age < 0:
            return 0
        # Record times are real; stage time runs ``speed`` times faster since then.
        now = time.time()
        count = 0
        for raw, _ in batch:
            age = (now - _created(raw).timestamp()) * self.stage.clock.speed
            if age <= self.max_record_age:
                break
            count += 1
        return count

    def _discard(
        self,
        records: list[dict[str, Any]],
        shard_id: str,
        condition: str,
        invokes: int,
        last_result: InvocationResult | None,
    ) -> None:
        self.discarded_batches += 1
        if not records or not self.on_failure:
            return
        message = stream_failure_record(
            records=records,
            shard_id=shard_id,
            stream_arn=self.stream_arn,
            function_arn=self.function.spec.arn,
            condition=condition,
            invoke_count=invokes,
            last_result=last_result,
            now=self.stage.clock.now(),
        )
        body = json.dumps(message)
        try:
            service = self.on_failure.split(":")[2]
            if service == "sqs":
                self._sqs.send_message(QueueUrl=self._queue_url(self.on_failure), MessageBody=body)
            elif service == "sns":
                self._sns.publish(TopicArn=self.on_failure, Message=body)
            else:
                self._report(f"on-failure destination {self.on_failure} is not emulated")
        except Exception as error:
            self._report(f"sending to the on-failure destination failed: {error}")

    def _queue_url(self, arn: str) -> str:
        try:
            return str(
                self.stage.deployment.find("AWS::SQS::Queue", arn=arn).attributes["QueueUrl"]
            )
        except KeyError:
            return str(self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"])

    def _report(self, message: str) -> None:
        record = {"type": "localstage.eventSourceMapping", "source": self.stream_arn}
        report_once(self, self.stage.logs, self.function.spec.label, {**record, "error": message})
