"""Executor of one-off schedules: EventBridge Scheduler invokes it asynchronously.

A thin adapter: parse the substituted target input, run the task through
``schedule_runs.run_scheduled_task`` and return what happened. Returning hands the run to
the on-success destination (the cleanup); raising makes Lambda retry the event and,
after the last retry, hands it to the on-failure destination (the cleanup as well).
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
from handler_kit import status_transitions
from handler_kit.clients import client_config
from handler_kit.clock import Clock, utc_now
from handler_kit.config import require_env
from handler_kit.outcomes import report_outcome

# Clients are built once per execution environment.
store = schedule_store.ScheduleStore(
    boto3.client("dynamodb", config=client_config(max_attempts=5)),
    require_env("SCHEDULE_TABLE_NAME"),
)
#: Replaced by a fake clock in tests.
clock: Clock = utc_now

logger = Logger()
metrics = Metrics()

_OUTCOME_METRICS = {
    schedule_models.RunOutcome.COMPLETED: "TasksCompleted",
    schedule_models.RunOutcome.DUPLICATE: "DuplicateDelivery",
    schedule_models.RunOutcome.IN_PROGRESS: "DuplicateDelivery",
    schedule_models.RunOutcome.MISSING: "ScheduleWithoutRecord",
    schedule_models.RunOutcome.DISCARDED: "ResultDiscarded",
}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``schedule_executor.handler``)."""
    try:
        invocation = schedule_parsing.parse_invocation(event)
    except schedule_models.InvalidInvocationError:
        metrics.add_metric(name="InvalidInvocation", unit=MetricUnit.Count, value=1)
        logger.exception("invalid scheduled invocation; it ends in the cleanup's failure queue")
        raise
    logger.set_correlation_id(invocation.execution_id)
    logger.append_keys(schedule_id=invocation.schedule_id, attempt_number=invocation.attempt_number)
    try:
        outcome = schedule_runs.run_scheduled_task(
            store,
            invocation,
            lease_owner=status_transitions.lease_owner_for(context.aws_request_id),
            remaining_ms=context.get_remaining_time_in_millis(),
            clock=clock,
        )
    except schedule_models.TaskFailedError:
        metrics.add_metric(name="TaskAttemptsFailed", unit=MetricUnit.Count, value=1)
        logger.exception("task failed; Lambda retries the event")
        raise
    report_outcome(metrics, _OUTCOME_METRICS, outcome, logger.info, "scheduled invocation handled")
    return {
        "schedule_id": invocation.schedule_id,
        "execution_id": invocation.execution_id,
        "outcome": outcome.value,
    }
