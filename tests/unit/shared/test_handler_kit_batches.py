"""handler_kit.batches: the partial batch response every queue and stream consumer answers."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from handler_kit.batches import RECORDS_FAILED_METRIC, batch_handler, process_batch

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


@pytest.mark.parametrize(
    ("bodies", "failed"),
    [
        (["ok", "poison", "ok"], ["m-2"]),
        # Two poison messages around a good one: each by its own id, in order, and one
        # datapoint of 2, not 1 per batch
        (["poison", "ok", "poison"], ["m-1", "m-3"]),
    ],
    ids=["one-poison", "two-poison"],
)
def test_only_the_failed_records_are_reported_and_counted(
    processor: BatchProcessor, bodies: list[str], failed: list[str]
) -> None:
    # GIVEN a batch with poison messages among good ones
    event = sqs_event(
        *(sqs_record(body, message_id=f"m-{n}") for n, body in enumerate(bodies, start=1))
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
    # THEN only the poison messages are retried, and counted as failed records
    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}
    assert metrics.added == [(RECORDS_FAILED_METRIC, len(failed))]


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


@pytest.mark.parametrize(
    ("count_failures", "counted"), [(True, [(RECORDS_FAILED_METRIC, 1)]), (False, [])]
)
def test_a_consumer_that_counts_its_own_failures_adds_no_records_failed(
    processor: BatchProcessor,
    monkeypatch: pytest.MonkeyPatch,
    count_failures: bool,
    counted: list[tuple[str, float]],
) -> None:
    # GIVEN a consumer's entry point, with or without the RecordsFailed count (the fan-out
    # reducer counts its failures itself, as ReductionFailed)
    metrics = Metrics(namespace="HandlerKitTest", service="handler-kit-test")
    added: list[tuple[str, float]] = []
    monkeypatch.setattr(
        metrics, "add_metric", lambda name, unit, value, **_: added.append((name, value))
    )
    handler = batch_handler(
        _fail_on_poison,
        processor=processor,
        logger=Logger(service="handler-kit-test"),
        metrics=metrics,
        count_failures=count_failures,
    )

    # WHEN a batch with a poison message is handled
    response = handler(sqs_event(sqs_record("poison", message_id="m-1")), FakeLambdaContext())

    # THEN the message is reported either way, and counted as RecordsFailed only when asked
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert added == counted
