"""handler_kit.batches: the partial batch response every queue and stream consumer answers."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from handler_kit.batches import RECORDS_FAILED_METRIC, process_batch

from tests.support.events import sqs_event, sqs_record
from tests.support.fakes import FakeLambdaContext


class RecordingMetrics(Metrics):
    """Metrics that remember what was added instead of flushing it."""

    def __init__(self) -> None:
        self.added: list[tuple[str, float]] = []

    def add_metric(self, name: str, unit: Any, value: float, **_: Any) -> None:
        self.added.append((name, value))


def _fail_on_poison(record: SQSRecord) -> None:
    if record.body == "poison":
        raise ValueError("poison")


@pytest.fixture
def processor() -> BatchProcessor:
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def test_only_the_failed_records_are_reported_and_counted(processor: BatchProcessor) -> None:
    # GIVEN a batch with one poison message among good ones
    event = sqs_event(
        sqs_record("ok", message_id="m-1"),
        sqs_record("poison", message_id="m-2"),
        sqs_record("ok", message_id="m-3"),
    )
    metrics = RecordingMetrics()
    # WHEN processed
    response = process_batch(
        event,
        FakeLambdaContext(),
        record_handler=_fail_on_poison,
        processor=processor,
        metrics=metrics,
    )
    # THEN only the poison message is retried, and counted once as a failed record
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert metrics.added == [(RECORDS_FAILED_METRIC, 1)]


def test_a_clean_batch_reports_and_counts_nothing(processor: BatchProcessor) -> None:
    # GIVEN good messages WHEN processed THEN no failures and no RecordsFailed metric
    metrics = RecordingMetrics()
    response = process_batch(
        sqs_event(sqs_record("ok"), sqs_record("ok")),
        FakeLambdaContext(),
        record_handler=_fail_on_poison,
        processor=processor,
        metrics=metrics,
    )
    assert response == {"batchItemFailures": []}
    assert metrics.added == []


def test_without_metrics_failures_are_still_reported(processor: BatchProcessor) -> None:
    # GIVEN a fully failed batch and no metrics WHEN processed THEN every id is listed
    response = process_batch(
        sqs_event(sqs_record("poison", message_id="m-1")),
        FakeLambdaContext(),
        record_handler=_fail_on_poison,
        processor=processor,
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
