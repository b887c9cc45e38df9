"""account_publisher.handler: stream records from moto's DynamoDB stream to the bus.

The records come from the real stream of the moto table (written by the API handler)
and are turned into the Lambda event shape; a rule on the moto bus delivers what the
publisher puts to a consumer queue, so the tests see what a downstream consumer sees.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.support.events import dynamodb_stream_record
from tests.unit.event_sourcing.conftest import EVENT_SOURCE, SNAPSHOT_INTERVAL


def _new_event_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the mapping's filter lets through (tests/infra checks the deployed filter)."""
    return [r for r in records if r["dynamodb"].get("NewImage", {}).get("kind") == {"S": "event"}]


def _history(bank: Any) -> str:
    """An account with a credit (keyed) and a withdrawal, and enough events for a snapshot."""
    account_id = bank.open_id()
    bank.credit(account_id, 1_000, headers={"Idempotency-Key": "salary"})
    bank.withdraw(account_id, 250)
    for _ in range(SNAPSHOT_INTERVAL):
        bank.credit(account_id, 1)
    return account_id


def _keys(consumed: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(c["detail"]["account_id"], c["detail"]["version"]) for c in consumed]


def _fail_put_events(bank: Any, *, fail_on: set[int], how: str = "entry") -> list[int]:
    """Make the n-th PutEvents request (0-based) fail: a failed entry or a network error."""
    seen: list[int] = []

    def hook(**_: Any) -> Any:
        n = len(seen)
        seen.append(n)
        if n not in fail_on:
            return None
        if how == "network":
            raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")
        # botocore uses a before-call handler's return value as the (http, parsed) response.
        parsed = {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
        }
        return (type("Http", (), {"status_code": 200})(), parsed)

    bank.publisher.publisher._client.meta.events.register("before-call.events.PutEvents", hook)
    return seen


def test_each_new_event_is_published_once_as_a_domain_event(bank, infra):
    # GIVEN an account's history, read from the table's stream as the mapping delivers it
    account_id = _history(bank)
    records = _new_event_records(infra.new_stream_records())
    assert len(records) == 3 + SNAPSHOT_INTERVAL

    # WHEN the publisher gets them in one batch
    response = bank.publish(records)

    # THEN no record failed and the consumer got one domain event per event, in order
    assert response == {"batchItemFailures": []}
    consumed = infra.consumed()
    assert _keys(consumed) == [(account_id, v) for v in range(1, 4 + SNAPSHOT_INTERVAL)]
    created, credited, withdrawn = consumed[:3]
    assert [c["detail-type"] for c in consumed[:3]] == [
        "AccountCreated",
        "AccountCredited",
        "AccountWithdrawn",
    ]
    assert all(c["source"] == EVENT_SOURCE for c in consumed)
    assert withdrawn["detail"] == {
        "event_id": f"{account_id}:3",
        "account_id": account_id,
        "version": 3,
        "type": "AccountWithdrawn",
        "amount": 250,
        "balance": 750,
        "occurred_at": "2025-03-14T09:26:53.589Z",
    }
    assert credited["detail"]["balance"] == 1_000 and created["detail"]["balance"] == 0


def test_snapshots_and_idempotency_records_are_not_published(bank, infra):
    # GIVEN a stream that also carries a snapshot write and an idempotency record
    _history(bank)
    records = infra.new_stream_records()
    kinds = Counter(r["dynamodb"]["NewImage"]["kind"]["S"] for r in records)
    assert kinds["snapshot"] >= 1 and kinds["idempotency"] == 1

    # WHEN every record reaches the publisher (as if the mapping had no filter)
    response = bank.publish(records)

    # THEN only the events are published; the rest is skipped, not failed
    assert response == {"batchItemFailures": []}
    assert len(infra.consumed()) == kinds["event"]
    assert infra.failure_messages() == []


def test_modified_and_removed_items_are_not_published(bank, infra):
    # GIVEN a MODIFY of an event item and a REMOVE (neither happens in this design)
    keys = {"account_id": "8d1c4b7e-0000-4000-8000-000000000000", "version": 2}
    image = {**keys, "kind": "event", "type": "AccountCredited", "amount": 5, "balance": 5}
    records = [
        dynamodb_stream_record(keys=keys, new_image=image, event_name="MODIFY"),
        dynamodb_stream_record(keys=keys, event_name="REMOVE", view_type="KEYS_ONLY"),
    ]
    # WHEN they reach the publisher THEN nothing is published and nothing fails
    assert bank.publish(records) == {"batchItemFailures": []}
    assert infra.consumed() == []


def test_duplicate_delivery_publishes_nothing_a_consumer_would_count_twice(bank, infra):
    # GIVEN a batch that was published once
    _history(bank)
    records = _new_event_records(infra.new_stream_records())
    bank.publish(records)

    # WHEN the stream delivers the same batch again (at-least-once), later
    bank.clock.advance(3600)
    bank.publish(records)

    # THEN every copy of an event carries the same key (account + version) and the same
    # content and event time, because the entry is a pure function of the stored event
    consumed = infra.consumed()
    assert len(consumed) == 2 * len(records)
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for message in consumed:
        by_key.setdefault(_keys([message])[0], []).append(message)
    assert len(by_key) == len(records)
    for copies in by_key.values():
        assert len({json.dumps(c["detail"], sort_keys=True) for c in copies}) == 1
        assert len({c["time"] for c in copies}) == 1
        assert len({c["detail"]["event_id"] for c in copies}) == 1
    # AND a consumer that dedupes on account + version sums the balance changes once
    seen: set[tuple[str, int]] = set()
    total = 0
    for message in consumed:
        key = _keys([message])[0]
        if key in seen:
            continue
        seen.add(key)
        sign = -1 if message["detail-type"] == "AccountWithdrawn" else 1
        total += sign * message["detail"]["amount"]
    assert total == 1_000 - 250 + SNAPSHOT_INTERVAL


@pytest.mark.parametrize("how", ["entry", "network"])
def test_partial_batch_failure_reports_the_failed_record_and_everything_after_it(bank, infra, how):
    # GIVEN four events, and EventBridge failing the second PutEvents
    account_id = bank.open_id()
    for amount in (10, 20, 30):
        bank.credit(account_id, amount)
    records = _new_event_records(infra.new_stream_records())
    assert len(records) == 4
    calls = _fail_put_events(bank, fail_on={1}, how=how)

    # WHEN the batch is processed
    response = bank.publish(records)

    # THEN the second record and the ones after it (never tried) are reported, so Lambda
    # retries from the second record and events stay in order on the bus
    sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in sequence[1:]]}
    assert len(calls) == 2
    assert _keys(infra.consumed()) == [(account_id, 1)]

    # WHEN Lambda retries from the checkpoint (the failed record onwards)
    retry = bank.publish(records[1:])

    # THEN the rest is published, in order, and each event reached the consumer once
    assert retry == {"batchItemFailures": []}
    assert _keys(infra.consumed()) == [(account_id, v) for v in (2, 3, 4)]


def test_a_failed_first_record_fails_the_whole_batch_without_raising(bank, infra):
    # GIVEN two events and EventBridge failing the first PutEvents
    account_id = bank.open_id()
    bank.credit(account_id, 5)
    records = _new_event_records(infra.new_stream_records())
    _fail_put_events(bank, fail_on={0})

    # WHEN the batch is processed THEN both records are reported (no exception raised)
    response = bank.publish(records)

    assert len(response["batchItemFailures"]) == 2
    assert infra.consumed() == []


def test_poison_record_goes_to_the_failure_queue_and_the_rest_is_published(bank, infra):
    # GIVEN a batch whose middle record is an event item without an amount (a bad write)
    account_id = bank.open_id()
    bank.credit(account_id, 10)
    good = _new_event_records(infra.new_stream_records())
    poison = dynamodb_stream_record(
        keys={"account_id": account_id, "version": 99},
        new_image={
            "account_id": account_id,
            "version": 99,
            "kind": "event",
            "type": "AccountCredited",
        },
        event_name="INSERT",
    )

    # WHEN it is processed
    response = bank.publish([good[0], poison, good[1]])

    # THEN nothing is retried, the good records are published and the poison record is
    # in the failure queue, whole, with the reason
    assert response == {"batchItemFailures": []}
    assert _keys(infra.consumed()) == [(account_id, 1), (account_id, 2)]
    (message,) = infra.failure_messages()
    assert message["record"]["dynamodb"]["Keys"] == poison["dynamodb"]["Keys"]
    assert "malformed event item" in message["reason"]


@pytest.mark.parametrize("good_after", [False, True], ids=["alone", "before-a-good-one"])
def test_poison_record_is_retried_when_the_failure_queue_is_unreachable(
    bank, infra, good_after: bool
):
    # GIVEN a poison record, alone or before a good one, and an unreachable failure queue
    account_id = bank.open_id()
    good = _new_event_records(infra.new_stream_records()) if good_after else []
    poison = dynamodb_stream_record(
        keys={"account_id": account_id, "version": 5},
        new_image={"account_id": account_id, "version": 5, "kind": "event", "type": "Nope"},
        event_name="INSERT",
    )

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    bank.publisher.sqs.meta.events.register("before-call.sqs.SendMessage", unreachable)

    # WHEN the batch is processed
    response = bank.publish([poison, *good])

    # THEN the poison record is reported, so it is not lost, and so is every record after
    # it, unpublished: Lambda retries the stream from the poison record, so publishing
    # what follows it now would publish it twice
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": record["dynamodb"]["SequenceNumber"]} for record in [poison, *good]
        ]
    }
    assert infra.consumed() == []


def test_every_invocation_starts_without_an_earlier_failure(bank, infra):
    # GIVEN a batch that failed on its first record
    account_id = bank.open_id()
    records = _new_event_records(infra.new_stream_records())
    _fail_put_events(bank, fail_on={0})
    assert len(bank.publish(records)["batchItemFailures"]) == 1

    # WHEN the next invocation comes THEN its records are tried (the failure flag reset)
    assert bank.publish(records) == {"batchItemFailures": []}
    assert _keys(infra.consumed()) == [(account_id, 1)]


def test_domain_event_time_is_the_time_of_the_event(bank, infra):
    # GIVEN an account opened at the fake clock's start
    bank.open_id()
    # WHEN its event is published an hour later THEN the bus event's time is when it happened
    bank.clock.advance(3600)
    bank.publish(_new_event_records(infra.new_stream_records()))
    (consumed,) = infra.consumed()
    assert consumed["time"] == "2025-03-14T09:26:53Z"


def test_stream_records_have_the_shape_lambda_delivers(bank, infra):
    # GIVEN records read from moto's stream and turned into the Lambda shape
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

    bank.open_id()
    records = infra.new_stream_records()

    # WHEN Powertools' model of the Lambda DynamoDB stream event parses them THEN it accepts
    parsed = DynamoDBStreamModel.model_validate({"Records": records})
    assert parsed.Records[0].eventName == "INSERT"
    assert parsed.Records[0].dynamodb.StreamViewType == "NEW_IMAGE"
    assert parsed.Records[0].eventSourceARN == infra.stream.stream_arn
