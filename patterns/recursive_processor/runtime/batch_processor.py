"""The recursive S3 batch processor's Lambda entry point (``batch_processor.handler``).

A thin adapter for two kinds of asynchronous events:

- an S3 ObjectCreated notification (every record of it): start one run per object
  and send each its first hop;
- a hop request, sent by this function to itself: run that hop
  (``batch_runner.run_hop``).

An invalid event raises after the valid records were handled, so Lambda retries it
and then sends it to the on-failure destination queue; retrying the valid records is
harmless (runs are keyed by the S3 event and hops are claimed).
"""

from __future__ import annotations

import time
from typing import Any

import batch_events
import batch_hops
import batch_models
import batch_runner
import batch_service
import batch_store
import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from handler_kit.clients import client_config
from handler_kit.clock import Clock, Sleep, utc_now
from handler_kit.config import require_env

# Configuration and clients are built once per execution environment.
SETTINGS = batch_models.ProcessorSettings.from_env()
# Three attempts: a hop's last calls (its error object, its checkpoint, the next hop's
# Invoke) must fit in the safety margin (README, "Hop math").
_BOTO_CONFIG = client_config(max_attempts=3)
store = batch_store.RunStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), require_env("RUN_TABLE_NAME")
)
s3 = boto3.client("s3", config=_BOTO_CONFIG)
lambda_client = boto3.client("lambda", config=_BOTO_CONFIG)
#: Replaced by fakes in tests.
clock: Clock = utc_now
sleep: Sleep = time.sleep

logger = Logger()
metrics = Metrics()

_OUTCOME_METRICS = {
    batch_models.HopOutcome.CONTINUED: "HopsCommitted",
    batch_models.HopOutcome.DONE: "RunsDone",
    batch_models.HopOutcome.FAILED: "RunsFailed",
    batch_models.HopOutcome.DUPLICATE: "DuplicateHop",
    batch_models.HopOutcome.IN_PROGRESS: "DuplicateHop",
    batch_models.HopOutcome.REDISPATCHED: "HopRedispatched",
    batch_models.HopOutcome.STALE: "StaleHop",
    batch_models.HopOutcome.MISSING: "RunMissing",
    batch_models.HopOutcome.LOST_CLAIM: "LostClaim",
}


def _sender(context: LambdaContext) -> batch_hops.HopSender:
    # The function's own ARN comes from the context, not from its configuration: the
    # template cannot pass a function its own ARN without a circular reference.
    return batch_hops.LambdaHopSender(lambda_client, context.invoked_function_arn)


def _run_hop(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = batch_events.parse_hop_request(event)
    logger.append_keys(run_id=request.run_id, hop=request.hop)
    environment = batch_hops.HopEnvironment(
        store=store,
        s3=s3,
        sender=_sender(context),
        settings=SETTINGS,
        remaining_ms=context.get_remaining_time_in_millis,
        request_id=context.aws_request_id,
        clock=clock,
        sleep=sleep,
    )
    try:
        outcome = batch_runner.run_hop(environment, request)
    except batch_models.HopHeldByEarlierAttemptError:
        # Counted apart from real failures: usually a copy of the event meeting its
        # own live hop, sometimes an attempt that died holding the claim.
        metrics.add_metric(name="HopHeldByEarlierAttempt", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=_OUTCOME_METRICS[outcome], unit=MetricUnit.Count, value=1)
    return {"run_id": request.run_id, "hop": request.hop, "outcome": outcome.value}


def _start_runs(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    created, invalid = batch_events.parse_s3_records(event)
    run_ids = batch_service.start_runs(
        store, _sender(context), created, now=clock(), settings=SETTINGS
    )
    metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=len(run_ids))
    if invalid:
        metrics.add_metric(name="InvalidRecords", unit=MetricUnit.Count, value=len(invalid))
        raise batch_models.InvalidEventError(f"invalid S3 records: {invalid}")
    return {"run_ids": run_ids}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``batch_processor.handler``)."""
    if not isinstance(event, dict):
        raise batch_models.InvalidEventError("event is not a JSON object")
    if batch_events.is_hop_request(event):
        return _run_hop(event, context)
    if batch_events.is_s3_test_event(event):
        logger.info("S3 test event; nothing to process")
        return {"run_ids": []}
    return _start_runs(event, context)
