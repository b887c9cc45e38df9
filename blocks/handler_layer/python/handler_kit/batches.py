"""Partial batch responses of the queue and stream consumers (Powertools batch utility)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

#: The metric counting the records of a batch reported as failures.
RECORDS_FAILED_METRIC = "RecordsFailed"


class NotStartedError(RuntimeError):
    """Too little of the invocation is left to process a record.

    The record is not touched and is handed back (a batch item failure): a record cut
    off by the function timeout would fail the whole batch instead, the records already
    processed included. A handed-back queue message uses up one of its receives; a
    stream record is retried from (Lambda's checkpoint). The decoupled worker's batch is
    sized so that this does not happen; the fan-out worker and the event publisher rely
    on it when their calls stall (a slow DynamoDB or EventBridge, a changed setting).
    """


def ensure_time_to_start(remaining_ms: int, *, budget_ms: int) -> None:
    """Refuse to start a record unless its budget still fits in the invocation.

    Parameters
    ----------
    remaining_ms : int
        The invocation's remaining time (``context.get_remaining_time_in_millis()``).
    budget_ms : int
        The longest the record may take: its work plus what it needs besides it.

    Raises
    ------
    NotStartedError
        If less than ``budget_ms`` remains.

    Examples
    --------
    >>> ensure_time_to_start(12_000, budget_ms=12_000)
    >>> ensure_time_to_start(11_999, budget_ms=12_000)
    Traceback (most recent call last):
    ...
    handler_kit.batches.NotStartedError: 11999 ms left, 12000 ms needed: handed back unstarted
    """
    if remaining_ms < budget_ms:
        raise NotStartedError(
            f"{remaining_ms} ms left, {budget_ms} ms needed: handed back unstarted"
        )


def process_batch(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    record_handler: Callable[..., Any],
    processor: BatchProcessor,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """Run ``record_handler`` on each record and answer the partial batch response.

    A record whose handler raises is listed in ``batchItemFailures``, so only it is
    retried.

    Parameters
    ----------
    event : dict
        The Lambda event (an SQS batch or a DynamoDB stream batch).
    context : LambdaContext
        The Lambda context, passed on to handlers that take one.
    record_handler : Callable
        Processes one record; raising reports it as a failure.
    processor : BatchProcessor
        The function's processor (its event type and whole-batch policy).
    metrics : Metrics, optional
        When given, the failed records are counted as ``RecordsFailed``.

    Returns
    -------
    dict
        ``{"batchItemFailures": [{"itemIdentifier": ...}, ...]}``.
    """
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    failures = len(response.get("batchItemFailures", []))
    if failures and metrics is not None:
        metrics.add_metric(name=RECORDS_FAILED_METRIC, unit=MetricUnit.Count, value=failures)
    return dict(response)


def batch_handler(
    record_handler: Callable[..., Any],
    *,
    processor: BatchProcessor,
    logger: Logger,
    metrics: Metrics,
    count_failures: bool = True,
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point of a queue or stream consumer (see :func:`process_batch`).

    Logs carry the Lambda context (state cleared per invocation); metrics, with a cold
    start metric, are flushed at the end; with ``count_failures``, failed records are
    counted as ``RecordsFailed``.
    """

    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return process_batch(
            event,
            context,
            record_handler=record_handler,
            processor=processor,
            metrics=metrics if count_failures else None,
        )

    entry = metrics.log_metrics(capture_cold_start_metric=True)(handle)
    handler: Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
    handler = logger.inject_lambda_context(clear_state=True)(entry)
    return handler
