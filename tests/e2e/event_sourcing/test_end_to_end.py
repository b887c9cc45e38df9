"""Event sourcing end to end: the API, the event table, its stream, the publisher, the bus.

Everything goes through the Target interface. The stack has no consumer on its bus,
so the domain events are observed as a consumer would see them: a rule with a queue
target added for the test (``Target.subscribe_to_bus``) and removed afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from localstage.target import HttpResponse, Target

from patterns.event_sourcing import scenarios
from patterns.event_sourcing.scenarios import (
    DOMAIN_EVENT_TYPES,
    STACK,
    collect_domain_events,
)
from stacks.stage import cdk_json_context
from tests.support.events import dynamodb_stream_event, dynamodb_stream_record


def _open(target: Target, **headers: str) -> HttpResponse:
    return target.call_api(
        scenarios.api(target), "POST", "accounts", json_body={}, headers=headers or None
    )


def _history(target: Target, account_id: str, *, limit: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = target.call_api(
            scenarios.api(target), "GET", f"accounts/{account_id}/events?{query}"
        )
        assert page.status == 200, page.body
        assert len(page.body["events"]) <= limit
        events.extend(page.body["events"])
        cursor = page.body["next_cursor"]
        if cursor is None:
            return events


def _opened(target: Target) -> str:
    created = _open(target)
    assert created.status == 201, created.body
    return str(created.body["account_id"])


@pytest.fixture
def account(target: Target) -> str:
    return _opened(target)


@pytest.fixture
def bus_queue(target: Target) -> Iterator[str]:
    bus = target.output(STACK, "EventBusName")
    queue = target.subscribe_to_bus(bus, {"detail-type": list(DOMAIN_EVENT_TYPES)})
    yield queue
    target.unsubscribe_from_bus(bus, queue)


def test_create_credit_withdraw_and_read(target: Target, account: str) -> None:
    # WHEN the account is credited and debited
    credited = scenarios.command(target, account, "credit", 10_000)
    withdrawn = scenarios.command(target, account, "withdraw", 2_550)
    state = scenarios.read(target, account)

    # THEN each command answered the new state and its event, and a read agrees
    assert (credited.status, credited.body["balance"], credited.body["version"]) == (200, 10_000, 2)
    assert withdrawn.status == 200
    assert withdrawn.body["event"] == {
        "event_id": f"{account}:3",
        "account_id": account,
        "version": 3,
        "type": "AccountWithdrawn",
        "amount": 2_550,
        "balance": 7_450,
        "occurred_at": withdrawn.body["event"]["occurred_at"],
    }
    assert state.status == 200
    assert state.body["balance"] == 7_450
    assert state.body["version"] == 3
    assert state.body["updated_at"] == withdrawn.body["event"]["occurred_at"]


def test_history_pages_oldest_first_with_a_cursor(target: Target, account: str) -> None:
    # GIVEN an account with 7 events
    for amount in (1, 2, 3, 4, 5, 6):
        assert scenarios.command(target, account, "credit", amount).status == 200

    # WHEN the history is read 3 events at a time
    events = _history(target, account, limit=3)

    # THEN every event comes once, oldest first
    assert [event["version"] for event in events] == [1, 2, 3, 4, 5, 6, 7]
    assert [event["amount"] for event in events] == [0, 1, 2, 3, 4, 5, 6]
    assert events[0]["type"] == "AccountCreated"


@pytest.mark.api_only
def test_an_overdraft_is_refused_and_writes_nothing(target: Target, account: str) -> None:
    # GIVEN a balance of 100
    assert scenarios.command(target, account, "credit", 100).status == 200

    # WHEN a withdrawal of 101 is asked for
    refused = scenarios.command(target, account, "withdraw", 101)

    # THEN it is refused with 409 and the account is unchanged
    assert refused.status == 409
    assert refused.body["error"] == "insufficient_funds"
    state = scenarios.read(target, account).body
    assert (state["balance"], state["version"]) == (100, 2)


@pytest.mark.api_only
def test_an_unknown_account_is_404(target: Target) -> None:
    unknown = str(uuid.uuid4())

    # WHEN an account that does not exist is read, its history listed, or credited
    responses = [
        scenarios.read(target, unknown),
        target.call_api(scenarios.api(target), "GET", f"accounts/{unknown}/events"),
        scenarios.command(target, unknown, "credit", 5),
    ]

    # THEN each answers 404 in the app's error shape
    assert [response.status for response in responses] == [404, 404, 404]
    assert all(response.body["error"] == "not_found" for response in responses)


@pytest.mark.api_only
@pytest.mark.parametrize("amount", [0, -1, 10.5, "10", None, 100_000_001])
def test_a_bad_amount_is_400_and_writes_nothing(target: Target, account: str, amount: Any) -> None:
    # WHEN a command carries an amount that is not a positive integer within the maximum
    response = scenarios.command(target, account, "credit", amount)

    # THEN it is refused with 400 before anything is written
    assert response.status == 400
    assert response.body["error"] == "invalid_request"
    assert scenarios.read(target, account).body["version"] == 1


def test_a_retried_command_with_the_same_idempotency_key_appends_once(
    target: Target, account: str
) -> None:
    # WHEN the same keyed credit is sent twice
    key = f"e2e-{uuid.uuid4()}"
    first = scenarios.command(target, account, "credit", 40, **{"Idempotency-Key": key})
    again = scenarios.command(target, account, "credit", 40, **{"Idempotency-Key": key})

    # THEN the retry replays the first outcome and nothing more was appended
    assert first.status == again.status == 200
    assert again.body == first.body
    assert again.headers.get("idempotent-replayed") == "true"
    state = scenarios.read(target, account).body
    assert (state["balance"], state["version"]) == (40, 2)


def test_a_retried_open_with_the_same_idempotency_key_finds_the_same_account(
    target: Target,
) -> None:
    key = f"e2e-open-{uuid.uuid4()}"

    # WHEN an open request is retried with its key
    first = _open(target, **{"Idempotency-Key": key})
    again = _open(target, **{"Idempotency-Key": key})

    # THEN both name the same account, which has one event
    assert first.status == again.status == 201
    assert again.body["account_id"] == first.body["account_id"]
    assert [e["version"] for e in _history(target, first.body["account_id"], limit=10)] == [1]


def _withdraw_until_decided(target: Target, account: str) -> HttpResponse:
    # A 409 concurrent_update is retryable (it says Retry-After): a client retries it.
    for _ in range(20):
        response = scenarios.command(target, account, "withdraw", 10)
        if response.status != 409 or response.body.get("error") != "concurrent_update":
            return response
    raise AssertionError("20 attempts in a row lost to concurrent updates")


def test_concurrent_withdrawals_never_overdraw(target: Target, account: str) -> None:
    # GIVEN a balance of 100
    assert scenarios.command(target, account, "credit", 100).status == 200

    # WHEN 20 withdrawals of 10 race each other (moto requests are serialized, so each
    # conditional write is atomic as on AWS)
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: _withdraw_until_decided(target, account), range(20)))

    # THEN exactly 10 succeed, the others are refused, nothing failed with a 5xx
    statuses = sorted(response.status for response in responses)
    assert statuses == [200] * 10 + [409] * 10
    assert {r.body["error"] for r in responses if r.status == 409} == {"insufficient_funds"}
    # AND the balance is 0 after contiguous versions 1..12
    state = scenarios.read(target, account).body
    assert (state["balance"], state["version"]) == (0, 12)
    events = _history(target, account, limit=100)
    assert [event["version"] for event in events] == list(range(1, 13))
    assert [event["balance"] for event in events[2:]] == list(range(90, -1, -10))


def _identities(copies: list[dict[str, Any]]) -> int:
    """How many different events ``copies`` are (detail and time: what a consumer sees)."""
    return len({json.dumps([e["detail"], e["time"]], sort_keys=True) for e in copies})


def test_domain_events_reach_the_bus_once_per_version(target: Target, bus_queue: str) -> None:
    # WHEN an account is opened (after the bus is observed), credited and debited
    account = _opened(target)
    assert scenarios.command(target, account, "credit", 300).status == 200
    assert scenarios.command(target, account, "withdraw", 120).status == 200

    # THEN the bus carried one domain event per version, as the publisher shapes them:
    # streams and EventBridge deliver at least once, so a version may arrive more than
    # once, but every copy is the same event (a consumer keyed on event_id counts one)
    seen = collect_domain_events(target, bus_queue, account, 3)
    events = [seen[(account, version)] for version in (1, 2, 3)]
    assert [_identities(copies) for copies in events] == [1, 1, 1]
    assert [copies[0]["detail-type"] for copies in events] == list(DOMAIN_EVENT_TYPES)
    withdrawn = events[2][0]
    assert withdrawn["source"] == f"{cdk_json_context()['app_name']}.accounts"
    assert withdrawn["detail"] == {
        "event_id": f"{account}:3",
        "account_id": account,
        "version": 3,
        "type": "AccountWithdrawn",
        "amount": 120,
        "balance": 180,
        "occurred_at": withdrawn["detail"]["occurred_at"],
    }
    # The event's time is the command's, not the publication's (PutEvents Time).
    assert withdrawn["time"] == withdrawn["detail"]["occurred_at"][:19] + "Z"


def test_a_duplicate_stream_delivery_publishes_nothing_counted_twice(
    target: Target, bus_queue: str
) -> None:
    # GIVEN an account's creation event, published once by the stream
    account = _opened(target)
    first = collect_domain_events(target, bus_queue, account, 1)[(account, 1)]
    stored = target.get_item(
        target.output(STACK, "EventTableName"),
        {
            "account_id": account,
            "version": 1,
        },
    )
    assert stored is not None

    # WHEN the publisher gets that stream record again (as after a retried batch)
    publisher = target.physical_id(STACK, "EventSourcingAccountPublisherFunction")
    record = dynamodb_stream_record(
        keys={"account_id": account, "version": 1}, new_image=stored, event_name="INSERT"
    )
    result = target.invoke_function(publisher, dynamodb_stream_event(record))

    # THEN it published an identical copy: a consumer keyed on account + version
    # counts the event once, whichever copy it keeps
    assert result == {"batchItemFailures": []}
    again = collect_domain_events(target, bus_queue, account, 1)[(account, 1)]
    everything = first + again
    # (at least two: in localstage's duplicate delivery mode each one arrives twice)
    assert len(everything) >= 2
    assert len({(e["detail"]["account_id"], e["detail"]["version"]) for e in everything}) == 1
    assert _identities(everything) == 1


def test_a_poison_stream_record_is_set_aside_and_the_rest_is_published(
    target: Target, bus_queue: str
) -> None:
    # GIVEN a batch whose first record is an event item that cannot be an account event
    account = _opened(target)
    collect_domain_events(target, bus_queue, account, 1)
    stored = target.get_item(
        target.output(STACK, "EventTableName"), {"account_id": account, "version": 1}
    )
    assert stored is not None
    poison_id = f"poison-{uuid.uuid4()}"
    poison = dynamodb_stream_record(
        keys={"account_id": poison_id, "version": 1},
        new_image={"account_id": poison_id, "version": 1, "kind": "event", "amount": "lots"},
        event_name="INSERT",
        sequence_number="100",
    )
    valid = dynamodb_stream_record(
        keys={"account_id": account, "version": 1},
        new_image=stored,
        event_name="INSERT",
        sequence_number="101",
    )
    publisher = target.physical_id(STACK, "EventSourcingAccountPublisherFunction")

    # WHEN the publisher gets that batch
    result = target.invoke_function(publisher, dynamodb_stream_event(poison, valid))

    # THEN the batch succeeds: the poison record is in the failure queue, whole, and the
    # valid one was published
    assert result == {"batchItemFailures": []}
    failures = target.output(STACK, "PublisherFailureQueueUrl")
    set_aside = target.wait_for(
        "the poison record in the failure queue",
        lambda: (
            [json.loads(body) for body in target.receive_messages(failures) if poison_id in body]
            or None
        ),
        timeout=30,
    )
    assert set_aside[0]["record"]["dynamodb"]["Keys"]["account_id"] == {"S": poison_id}
    assert "malformed event item" in set_aside[0]["reason"]
    assert collect_domain_events(target, bus_queue, account, 1)[(account, 1)]
