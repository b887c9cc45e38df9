"""SQS worker for fan-out/fan-in: runs subtasks with partial batch responses.

Each record's result is stored and the job's counter decremented in one transaction
that a duplicate delivery cannot repeat. A record that raises is reported in
``batchItemFailures`` and only that message is retried: poison bodies, failing
subtasks (counted on their last receive, then moved to the DLQ) and contention.
"""

from __future__ import annotations

# Powertools' batch utility imports its ~100 pydantic parser models when pydantic is
# already imported (batch/types.py checks sys.modules); imported first, before any
# module of ours imports pydantic, it skips them: about 200 ms less cold start. No
# handler passes a parser model to BatchProcessor.
import aws_lambda_powertools.utilities.batch  # noqa: F401

# isort: split
import time

import boto3
import fan_out_gather
import fan_out_messages
import fan_out_models
import fan_out_store
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
from handler_kit.config import require_env
from handler_kit.outcomes import report_outcome

SETTINGS = fan_out_models.FanOutSettings.from_env()
#: Replaced by fakes in tests.
clock: Clock = utc_now
sleep: Sleep = time.sleep
# Clients are built once per execution environment.
store = fan_out_store.JobStore(
    boto3.client("dynamodb", config=worker_client_config()),
    require_env("JOB_TABLE_NAME"),
    require_env("RESULT_TABLE_NAME"),
    # Looked up at call time, so tests can replace ``sleep`` after import.
    sleep=lambda seconds: sleep(seconds),
)

logger = Logger()
metrics = Metrics()
# A fully failed batch is reported like a partial one instead of raising: the same
# messages are retried either way, and a poison subtask should not count as an error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

_OUTCOME_METRICS = {
    fan_out_models.SubtaskOutcome.COMPLETED: "SubtasksCompleted",
    fan_out_models.SubtaskOutcome.DUPLICATE: "DuplicateDelivery",
    fan_out_models.SubtaskOutcome.JOB_CLOSED: "ResultRefused",
    fan_out_models.SubtaskOutcome.TIMED_OUT: "JobsTimedOut",
}
_RECORD_KEYS = ["message_id", "receive_count", "job_id", "subtask"]


def _receive_count(record: SQSRecord) -> int:
    raw = (record.raw_event.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    try:
        return int(raw)
    except ValueError:
        return 1


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """Process one SQS record; raising reports it as a batch item failure."""
    logger.remove_keys(_RECORD_KEYS)
    receive_count = _receive_count(record)
    logger.append_keys(message_id=record.message_id, receive_count=receive_count)
    try:
        message = fan_out_messages.parse_subtask_message(record.body or "")
        logger.append_keys(job_id=message.job_id, subtask=message.index)
        ensure_time_to_start(
            lambda_context.get_remaining_time_in_millis(),
            budget_ms=message.work_ms + fan_out_models.SUBTASK_OVERHEAD_MS,
        )
        outcome = fan_out_gather.process_subtask(
            store,
            message,
            receive_count=receive_count,
            settings=SETTINGS,
            now=clock,
            sleep=sleep,
        )
    except NotStartedError as exc:
        metrics.add_metric(name="SubtaskNotStarted", unit=MetricUnit.Count, value=1)
        logger.warning("no time left for a subtask; message handed back", reason=str(exc))
        raise
    except fan_out_models.InvalidSubtaskMessageError:
        metrics.add_metric(name="PoisonMessage", unit=MetricUnit.Count, value=1)
        logger.exception("poison message; it will reach the DLQ after its retries")
        raise
    except fan_out_models.SubtaskExhaustedError:
        metrics.add_metric(name="SubtasksFailed", unit=MetricUnit.Count, value=1)
        logger.warning("subtask failed on its last receive: counted, moving to the DLQ")
        raise
    except fan_out_models.SubtaskFailedError:
        metrics.add_metric(name="SubtaskRetried", unit=MetricUnit.Count, value=1)
        logger.warning("subtask failed; message will be retried", exc_info=True)
        raise
    except fan_out_models.TransactionConflictError:
        metrics.add_metric(name="TransactionConflict", unit=MetricUnit.Count, value=1)
        logger.warning("counter contended; message will be retried", exc_info=True)
        raise
    except Exception:
        metrics.add_metric(name="SubtaskCrashed", unit=MetricUnit.Count, value=1)
        logger.exception("subtask crashed; message will be retried")
        raise
    report_outcome(metrics, _OUTCOME_METRICS, outcome, logger.debug, "message processed")


#: Lambda entry point (``fan_out_worker.handler``).
handler = batch_handler(record_handler, processor=processor, logger=logger, metrics=metrics)
