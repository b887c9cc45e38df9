"""DynamoDB stream consumer: publishes each new account event to the EventBridge bus.

The event source mapping's filter delivers only event items (no snapshots, no
idempotency records); this function also skips anything but an INSERT. Records are
published in stream order; after the first failure, the rest of the batch is reported
as failed without being tried, so Lambda retries from that record (its checkpoint) and
an account's events never reach the bus out of order. A record that could outlast the
invocation (less time left than ``RECORD_BUDGET_MS``) is not started and is reported
the same way, rather than the function timeout failing the whole batch. A poison
record (an item that is not a valid event: retrying cannot help) is sent whole to the
failure queue and skipped, so it does not hold up the shard; records that keep failing
to publish reach the same queue through the mapping's on-failure destination (metadata
only) after its retries.

Redelivered records publish identical entries (see ``account_bus.domain_event_entry``),
which consumers dedupe on account + version.
"""

from __future__ import annotations

# Powertools' batch utility imports its ~100 pydantic parser models when pydantic is
# already imported (batch/types.py checks sys.modules); imported first, before any
# module of ours imports pydantic, it skips them: about 200 ms less cold start. No
# handler passes a parser model to BatchProcessor.
import aws_lambda_powertools.utilities.batch  # noqa: F401

# isort: split
import json
from typing import Any, cast

import account_bus
import account_models
import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from handler_kit.batches import NotStartedError, ensure_time_to_start, process_batch
from handler_kit.clients import client_config
from handler_kit.config import require_env

# A record makes one call (PutEvents, or SendMessage for a poison record). Three
# attempts of at most 4 s (1 s to connect, 3 s to read) keep its worst case well inside
# the 30 s timeout; five of 7 s outlasted it, and a timed-out invocation fails its whole
# batch (every record retried and published again). The mapping retries a record whose
# call still fails.
_ATTEMPTS, _CONNECT_S, _READ_S = 3, 1, 3
#: The time a record needs left in the invocation, in ms: its call's worst case (every
#: attempt timing out, plus standard mode's backoff of at most 1 s and 2 s after
#: throttling). With less left, it is handed back unstarted (and so is the rest).
RECORD_BUDGET_MS = _ATTEMPTS * (_CONNECT_S + _READ_S) * 1000 + 3000

# Clients are built once per execution environment.
_BOTO_CONFIG = client_config(
    max_attempts=_ATTEMPTS, connect_timeout_s=_CONNECT_S, read_timeout_s=_READ_S
)
publisher = account_bus.DomainEventPublisher(
    boto3.client("events", config=_BOTO_CONFIG),
    bus_name=require_env("EVENT_BUS_NAME"),
    source=require_env("EVENT_SOURCE"),
)
sqs = boto3.client("sqs", config=_BOTO_CONFIG)
FAILURE_QUEUE_URL = require_env("FAILURE_QUEUE_URL")

logger = Logger()
metrics = Metrics()
# A fully failed batch is reported like a partial one: the mapping's retries, bisection
# and on-failure destination handle it either way.
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)


class EarlierRecordFailedError(RuntimeError):
    """Not tried: an earlier record of this batch failed, so Lambda retries from there."""


class _BatchState:
    """Whether a record of the current batch has failed (reset per invocation)."""

    failed = False


_batch = _BatchState()


def _is_new_event(event_name: Any, new_image: Any) -> bool:
    """INSERTs of event items: the mapping's filter, plus the eventName it cannot test."""
    if event_name != "INSERT" or not isinstance(new_image, dict):
        return False
    kind = new_image.get("kind")
    return isinstance(kind, dict) and kind.get("S") == "event"


def record_handler(record: DynamoDBRecord, lambda_context: LambdaContext) -> None:
    """Publish one stream record; raising reports it in ``batchItemFailures``."""
    sequence_number = record.dynamodb.sequence_number if record.dynamodb else None
    if _batch.failed:
        raise EarlierRecordFailedError(f"record {sequence_number} left for the retry")
    try:
        ensure_time_to_start(
            lambda_context.get_remaining_time_in_millis(), budget_ms=RECORD_BUDGET_MS
        )
    except NotStartedError as exc:
        # Reported, as every later record then is: Lambda retries from this one, in order.
        _batch.failed = True
        metrics.add_metric(name="RecordNotStarted", unit=MetricUnit.Count, value=1)
        logger.warning("no time left for a record; handed back", reason=str(exc))
        raise
    new_image = (record.raw_event.get("dynamodb") or {}).get("NewImage")
    if not _is_new_event(record.raw_event.get("eventName"), new_image):
        # The mapping's filter should have dropped it (snapshot, idempotency record).
        metrics.add_metric(name="RecordSkipped", unit=MetricUnit.Count, value=1)
        logger.info("not a new event; skipped", event_name=record.raw_event.get("eventName"))
        return
    try:
        event = account_models.AccountEvent.from_item(cast(dict[str, Any], new_image))
        publisher.publish(event)
    except account_models.InvalidStreamRecordError as exc:
        _set_aside(record, reason=str(exc))
        return
    except Exception:
        _batch.failed = True
        metrics.add_metric(name="PublishFailed", unit=MetricUnit.Count, value=1)
        logger.exception("publishing failed; the record will be retried", sequence=sequence_number)
        raise
    metrics.add_metric(name="DomainEventsPublished", unit=MetricUnit.Count, value=1)
    logger.info("domain event published", event_id=event.event_id, type=event.type.value)


def _set_aside(record: DynamoDBRecord, *, reason: str) -> None:
    """Send a poison record to the failure queue and go on with the batch."""
    logger.error("poison record set aside", reason=reason)
    try:
        sqs.send_message(
            QueueUrl=FAILURE_QUEUE_URL,
            MessageBody=json.dumps({"reason": reason, "record": record.raw_event}, default=str),
        )
    except Exception:
        _batch.failed = True
        logger.exception("could not set the poison record aside; it will be retried")
        raise
    metrics.add_metric(name="PoisonRecord", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``account_publisher.handler``)."""
    _batch.failed = False
    return process_batch(event, context, record_handler=record_handler, processor=processor)
