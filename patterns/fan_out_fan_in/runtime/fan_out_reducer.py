"""DynamoDB stream consumer: reduces a job once its counter reached 0.

The event source mapping's filter passes only job items that changed to
``remaining = 0`` while RUNNING, so this runs about once per job; duplicates and
concurrent runs are harmless (conditional RUNNING to REDUCING to DONE/FAILED).
A record that raises is reported in ``batchItemFailures`` and retried.
"""

from __future__ import annotations

# Powertools' batch utility imports its ~100 pydantic parser models when pydantic is
# already imported (batch/types.py checks sys.modules); imported first, before any
# module of ours imports pydantic, it skips them: about 200 ms less cold start. No
# handler passes a parser model to BatchProcessor.
import aws_lambda_powertools.utilities.batch  # noqa: F401

# isort: split
from typing import Any

import boto3
import fan_out_gather
import fan_out_models
import fan_out_store
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
)
from handler_kit.batches import batch_handler
from handler_kit.clients import client_config
from handler_kit.clock import Clock, utc_now
from handler_kit.config import require_env
from handler_kit.outcomes import report_outcome

#: Replaced by a fake clock in tests.
clock: Clock = utc_now
# Clients are built once per execution environment.
store = fan_out_store.JobStore(
    boto3.client("dynamodb", config=client_config(max_attempts=5)),
    require_env("JOB_TABLE_NAME"),
    require_env("RESULT_TABLE_NAME"),
)

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)

_OUTCOME_METRICS = {
    fan_out_models.ReduceOutcome.DONE: "JobsDone",
    fan_out_models.ReduceOutcome.FAILED: "JobsFailed",
    fan_out_models.ReduceOutcome.ALREADY_FINISHED: "DuplicateReduction",
    fan_out_models.ReduceOutcome.NOT_READY: "ReductionNotReady",
    fan_out_models.ReduceOutcome.TIMED_OUT: "JobsTimedOut",
    fan_out_models.ReduceOutcome.MISSING: "JobMissing",
}


def job_id_of(record: dict[str, Any]) -> str:
    """The ``job_id`` key of a stream record (low-level attribute value shape).

    Raises
    ------
    fan_out_models.InvalidRequestError
        If the record has no string ``job_id`` key that is a UUID.
    """
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    value = (keys.get("job_id") or {}).get("S")
    if not isinstance(value, str):
        raise fan_out_models.InvalidRequestError("stream record has no job_id key")
    return fan_out_models.parse_job_id(value)


def record_handler(record: DynamoDBRecord) -> None:
    """Reduce the job of one stream record; raising reports it as a failure."""
    job_id = job_id_of(record.raw_event)
    logger.append_keys(job_id=job_id)
    try:
        outcome = fan_out_gather.reduce_job(store, job_id, now=clock)
    except Exception:
        metrics.add_metric(name="ReductionFailed", unit=MetricUnit.Count, value=1)
        logger.exception("reduction failed; the record will be retried")
        raise
    report_outcome(metrics, _OUTCOME_METRICS, outcome, logger.info, "job reduced")


#: Lambda entry point (``fan_out_reducer.handler``).
handler = batch_handler(
    record_handler, processor=processor, logger=logger, metrics=metrics, count_failures=False
)
