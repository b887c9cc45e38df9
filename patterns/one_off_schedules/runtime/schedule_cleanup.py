"""Cleanup of one-off schedules: the executor's on-success and on-failure destination.

A thin adapter: parse the Lambda destination record, then ``schedule_runs.clean_up``
deletes the schedule (one already gone counts as done) and, for a failed run, records
FAILED with the failed event. Raising makes Lambda retry; after the retries the record
goes to this function's own failure queue (an alarm watches it).
"""

from __future__ import annotations

from typing import Any

import boto3
import schedule_models
import schedule_parsing
import schedule_runs
import schedule_store
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from handler_kit.clients import client_config
from handler_kit.clock import Clock, utc_now
from handler_kit.config import require_env

# Clients are built once per execution environment.
_BOTO_CONFIG = client_config(max_attempts=5)
store = schedule_store.ScheduleStore(
    boto3.client("dynamodb", config=_BOTO_CONFIG), require_env("SCHEDULE_TABLE_NAME")
)
scheduler = schedule_store.Schedules(
    boto3.client("scheduler", config=_BOTO_CONFIG), require_env("SCHEDULE_GROUP_NAME")
)
#: Replaced by a fake clock in tests.
clock: Clock = utc_now

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``schedule_cleanup.handler``)."""
    try:
        record = schedule_parsing.parse_destination_record(event)
        logger.append_keys(
            condition=record.request_context.condition,
            executor_request_id=record.request_context.request_id,
        )
        outcome, recorded_failure = schedule_runs.clean_up(store, scheduler, record, now=clock())
    except (schedule_models.InvalidDestinationRecordError, schedule_models.ForeignScheduleError):
        metrics.add_metric(name="InvalidCleanupRecord", unit=MetricUnit.Count, value=1)
        logger.exception("record names no schedule of this pattern; it ends in the DLQ")
        raise
    except schedule_models.ScheduleStillRunningError as exc:
        metrics.add_metric(name="CleanupDeferred", unit=MetricUnit.Count, value=1)
        logger.warning(
            "a delivery still holds the schedule; Lambda retries the cleanup", reason=str(exc)
        )
        raise
    name = (
        "SchedulesDeleted"
        if outcome is schedule_models.CleanupOutcome.DELETED
        else "AlreadyDeleted"
    )
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if recorded_failure:
        metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
    logger.info("schedule cleaned up", outcome=outcome.value, recorded_failure=recorded_failure)
    return {"outcome": outcome.value, "recorded_failure": recorded_failure}
