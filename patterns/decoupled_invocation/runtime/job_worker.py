"""SQS worker for decoupled invocation: runs queued jobs with partial batch responses.

A record that raises is reported in ``batchItemFailures`` and only that message is
retried (it reaches the DLQ after the queue's maxReceiveCount): poison bodies,
``JobLeasedError`` (another delivery is working on the job) and crashes. Business
failures, duplicates and timeouts are recorded and the message is consumed.

Before each record the remaining time is checked: a job starts only if one of the
longest jobs still fits (``JOB_BUDGET_MS``); otherwise its message is handed back
untouched. A job cut off by the function timeout would make Lambda retry the whole
batch, finished jobs included.
"""

from __future__ import annotations

# Powertools' batch utility imports its ~100 pydantic parser models when pydantic is
# already imported (batch/types.py checks sys.modules); imported first, before any
# module of ours imports pydantic, it skips them: about 200 ms less cold start. No
# handler passes a parser model to BatchProcessor.
import aws_lambda_powertools.utilities.batch  # noqa: F401

# isort: split
import os
import time

import boto3
import job_models
import job_runner
import job_store
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from handler_kit.batches import NotStartedError, batch_handler, ensure_time_to_start
from handler_kit.clients import worker_client_config
from handler_kit.clock import Clock, Sleep, utc_now
from handler_kit.config import int_env, require_env
from handler_kit.outcomes import report_outcome
from handler_kit.status_transitions import lease_owner_for

# Clients are built once per execution environment.
store = job_store.JobStore(
    boto3.client("dynamodb", config=worker_client_config()), require_env("JOB_TABLE_NAME")
)
#: The longest job plus its overhead, in ms: what must remain for a job to start.
JOB_BUDGET_MS = int_env(os.environ, "JOB_BUDGET_MS", job_models.JOB_BUDGET_MS)
#: Replaced by fakes in tests.
clock: Clock = utc_now
sleep: Sleep = time.sleep

logger = Logger()
metrics = Metrics()
# A fully failed batch is reported like a partial one (every id listed) instead of
# raising: the same messages are retried either way, and expected conditions such as
# a live lease on a single-message batch should not count as function errors.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

_OUTCOME_METRICS = {
    job_models.RunOutcome.COMPLETED: "JobsCompleted",
    job_models.RunOutcome.FAILED: "JobsFailed",
    job_models.RunOutcome.TIMED_OUT: "JobsTimedOut",
    job_models.RunOutcome.DUPLICATE: "DuplicateDelivery",
    job_models.RunOutcome.MISSING: "JobMissing",
    job_models.RunOutcome.DISCARDED: "ResultDiscarded",
}
_RECORD_KEYS = ["message_id", "receive_count", "job_id"]


def _correlation_id(record: SQSRecord) -> str | None:
    attributes = record.raw_event.get("messageAttributes") or {}
    attribute = attributes.get("correlation_id") or {}
    value = attribute.get("stringValue")
    return value if isinstance(value, str) else None


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """Process one SQS record; raising reports it as a batch item failure."""
    logger.remove_keys(_RECORD_KEYS)
    logger.set_correlation_id(_correlation_id(record))
    logger.append_keys(
        message_id=record.message_id,
        receive_count=(record.raw_event.get("attributes") or {}).get("ApproximateReceiveCount"),
    )
    try:
        ensure_time_to_start(lambda_context.get_remaining_time_in_millis(), budget_ms=JOB_BUDGET_MS)
        message = job_models.parse_task_message(record.body or "")
        logger.append_keys(job_id=message.job_id)
        outcome = job_runner.run_job(
            store,
            message.job_id,
            lease_owner=lease_owner_for(record.message_id),
            remaining_ms=lambda_context.get_remaining_time_in_millis(),
            clock=clock,
            sleep=sleep,
        )
    except NotStartedError as exc:
        metrics.add_metric(name="JobNotStarted", unit=MetricUnit.Count, value=1)
        logger.warning("no time left for a job; message handed back", reason=str(exc))
        raise
    except (job_models.JobLeasedError, job_models.JobClaimConflictError) as exc:
        metrics.add_metric(name="LeaseConflict", unit=MetricUnit.Count, value=1)
        logger.warning("job busy; message will be retried", reason=str(exc))
        raise
    except job_models.InvalidTaskMessageError:
        metrics.add_metric(name="PoisonMessage", unit=MetricUnit.Count, value=1)
        logger.exception("poison message; it will reach the DLQ after its retries")
        raise
    except Exception:
        metrics.add_metric(name="JobCrashed", unit=MetricUnit.Count, value=1)
        logger.exception("job crashed; message will be retried")
        raise
    report_outcome(metrics, _OUTCOME_METRICS, outcome, logger.info, "message processed")


#: Lambda entry point (``job_worker.handler``).
handler = batch_handler(record_handler, processor=processor, logger=logger, metrics=metrics)
