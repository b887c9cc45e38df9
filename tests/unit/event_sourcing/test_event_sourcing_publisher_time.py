"""account_publisher.handler within its timeout: a record starts only when its call's
worst case still fits in the invocation, and a stalled PutEvents never outlasts it.

A stream invocation cut off by its timeout fails whole: every record of the batch is
retried and published again, and the mapping bisects the batch. A record handed back
unstarted (a batch item failure) is retried from, in order, with nothing re-published.
"""

from __future__ import annotations

import math
from typing import Any

from tests.support.aws_faults import attempts_stall
from tests.support.events import dynamodb_stream_event

#: The publisher's timeout (``construct.py``: 30 s).
PUBLISHER_TIMEOUT_MS = 30_000
#: The mapping's batch size (``publisher_batch_size``: 10).
BATCH_SIZE = 10


def _event_records(bank: Any, infra: Any, credits: int) -> tuple[str, list[dict[str, Any]]]:
    """An account with ``credits`` credits, and the stream records of its events."""
    account_id = bank.open_id()
    for _ in range(credits):
        bank.credit(account_id, 1)
    records = [
        r for r in infra.new_stream_records() if r["dynamodb"]["NewImage"]["kind"] == {"S": "event"}
    ]
    assert len(records) == credits + 1
    return account_id, records


def _publish_on_the_clock(bank: Any, records: list[dict[str, Any]], remaining_ms: int) -> Any:
    """Invoke the publisher with a context whose time left runs down with the fake clock."""
    return bank.invoke(
        "publisher",
        dynamodb_stream_event(*records),
        "AccountPublisher",
        clock=bank.clock,
        remaining_ms=remaining_ms,
    )


def _failed(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def _versions(infra: Any) -> list[int]:
    return [message["detail"]["version"] for message in infra.consumed()]


def _sequence_numbers(records: list[dict[str, Any]]) -> list[str]:
    return [record["dynamodb"]["SequenceNumber"] for record in records]


def test_records_with_too_little_time_left_are_handed_back_unpublished(bank, infra):
    # GIVEN a batch of four events, and an invocation with 1 s left
    _, records = _event_records(bank, infra, credits=3)

    # WHEN the publisher gets it
    response = _publish_on_the_clock(bank, records, remaining_ms=1_000)

    # THEN every record is reported by its sequence number, and nothing is published
    assert _failed(response) == _sequence_numbers(records)
    assert infra.consumed() == []


def test_a_record_starts_only_while_its_worst_case_fits(bank, infra):
    # GIVEN four events, an invocation with just over one record's budget left, and a
    # PutEvents that takes a second
    _, records = _event_records(bank, infra, credits=3)
    budget_ms = bank.publisher.RECORD_BUDGET_MS

    def slow(**_: Any) -> None:
        bank.clock.advance(1)

    client = bank.publisher.publisher._client
    client.meta.events.register("before-call.events.PutEvents", slow)

    # WHEN the batch is processed
    response = _publish_on_the_clock(bank, records, remaining_ms=budget_ms + 500)

    # THEN the first record is published; the second (and so the rest) is handed back
    # unstarted, so Lambda retries from it, in order
    assert _versions(infra) == [1]
    assert _failed(response) == _sequence_numbers(records[1:])

    # WHEN Lambda retries from the checkpoint with time to spare
    retry = _publish_on_the_clock(bank, records[1:], remaining_ms=PUBLISHER_TIMEOUT_MS)

    # THEN the rest is published once, in order
    assert retry == {"batchItemFailures": []}
    assert _versions(infra) == [2, 3, 4]


def test_a_full_batch_whose_every_put_events_stalls_once_ends_within_the_timeout(bank, infra):
    # GIVEN a full batch, and a first attempt of every PutEvents that stalls until the
    # client's timeouts (botocore then retries it)
    _, records = _event_records(bank, infra, credits=BATCH_SIZE - 1)
    client = bank.publisher.publisher._client
    started = bank.clock()

    # WHEN the publisher processes it under the deployed timeout
    with attempts_stall(client, "PutEvents", bank.clock.advance) as waited:
        response = _publish_on_the_clock(bank, records, remaining_ms=PUBLISHER_TIMEOUT_MS)

    # THEN it ended before the timeout (not cut off, failing the whole batch)
    elapsed_ms = (bank.clock() - started).total_seconds() * 1000
    assert waited
    assert elapsed_ms <= PUBLISHER_TIMEOUT_MS
    # AND the records it published are a prefix, in order; the rest is handed back
    published = _versions(infra)
    assert published and published == list(range(1, len(published) + 1))
    assert _failed(response) == _sequence_numbers(records[len(published) :])

    # WHEN Lambda retries from the checkpoint THEN the rest is published once, in order
    retry = _publish_on_the_clock(bank, records[len(published) :], PUBLISHER_TIMEOUT_MS)
    assert retry == {"batchItemFailures": []}
    assert _versions(infra) == list(range(len(published) + 1, BATCH_SIZE + 1))


def test_a_put_events_whose_every_attempt_stalls_fails_its_record_within_the_timeout(bank, infra):
    # GIVEN a batch whose first PutEvents stalls on every attempt
    _, records = _event_records(bank, infra, credits=3)
    client = bank.publisher.publisher._client
    started = bank.clock()

    # WHEN the publisher processes it under the deployed timeout
    with attempts_stall(client, "PutEvents", bank.clock.advance, count=math.inf):
        response = _publish_on_the_clock(bank, records, remaining_ms=PUBLISHER_TIMEOUT_MS)

    # THEN the client gave up within the record's budget, well before the timeout, and
    # the batch is reported from that record on (a partial failure, not a timeout)
    elapsed_ms = (bank.clock() - started).total_seconds() * 1000
    assert elapsed_ms <= bank.publisher.RECORD_BUDGET_MS < PUBLISHER_TIMEOUT_MS
    assert _failed(response) == _sequence_numbers(records)
    assert infra.consumed() == []
