"""account_api.handler against moto: commands, reads, history, validation, idempotency."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import boto3
import pytest

from tests.support.events import assert_json_error

UNKNOWN = "8d1c4b7e-0000-4000-8000-000000000000"


# --------------------------------------------------------------------------- happy path


def test_open_account_appends_created_event_and_answers_201(bank, infra, es):
    # GIVEN an empty table
    # WHEN a client opens an account
    response = bank.open()

    # THEN 201 with the new account at version 1, balance 0, and a Location under the stage
    assert response.status == 201
    account_id = response.body["account_id"]
    assert uuid.UUID(account_id).version == 4
    location = f"/{es.stage}/accounts/{account_id}"
    assert response.headers["location"] == location
    assert response.body == {
        "account_id": account_id,
        "balance": 0,
        "version": 1,
        "created_at": "2025-03-14T09:26:53.589Z",
        "updated_at": "2025-03-14T09:26:53.589Z",
        "links": {"self": location, "events": f"{location}/events"},
    }
    # AND exactly one item: the AccountCreated event
    assert infra.raw_items() == [
        {
            "account_id": {"S": account_id},
            "version": {"N": "1"},
            "kind": {"S": "event"},
            "type": {"S": "AccountCreated"},
            "amount": {"N": "0"},
            "balance": {"N": "0"},
            "occurred_at": {"S": "2025-03-14T09:26:53.589Z"},
        }
    ]


def test_credit_withdraw_and_read_fold_the_events(bank, infra, clock):
    # GIVEN an open account
    account_id = bank.open_id()

    # WHEN it is credited 10000 and 250, then 1234 is withdrawn, a second apart
    clock.advance(1)
    first = bank.credit(account_id, 10_000)
    clock.advance(1)
    bank.credit(account_id, 250)
    clock.advance(1)
    last = bank.withdraw(account_id, 1234)

    # THEN each command answers 200 with the new state and the event it appended
    assert first.status == 200
    assert first.body["balance"] == 10_000 and first.body["version"] == 2
    assert first.body["event"] == {
        "event_id": f"{account_id}:2",
        "account_id": account_id,
        "version": 2,
        "type": "AccountCredited",
        "amount": 10_000,
        "balance": 10_000,
        "occurred_at": "2025-03-14T09:26:54.589Z",
    }
    assert last.status == 200
    assert last.body["event"]["type"] == "AccountWithdrawn"
    # AND a read shows the folded state
    read = bank.get(account_id)
    assert read.status == 200
    assert read.headers["cache-control"] == "no-store"
    assert read.body == {
        "account_id": account_id,
        "balance": 10_000 + 250 - 1234,
        "version": 4,
        "created_at": "2025-03-14T09:26:53.589Z",
        "updated_at": "2025-03-14T09:26:56.589Z",
    }
    # AND the versions are contiguous and every stored amount is an exact integer
    assert infra.versions(account_id) == [1, 2, 3, 4]
    assert [i["amount"]["N"] for i in infra.event_items(account_id)] == [
        "0",
        "10000",
        "250",
        "1234",
    ]


def test_withdrawing_the_whole_balance_is_allowed(bank):
    # GIVEN a balance of 500
    account_id = bank.open_id()
    bank.credit(account_id, 500)

    # WHEN exactly 500 is withdrawn THEN it succeeds and the balance is 0
    response = bank.withdraw(account_id, 500)
    assert response.status == 200 and response.body["balance"] == 0


def test_overdraft_is_refused_with_409_and_nothing_written(bank, infra):
    # GIVEN a balance of 100
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    before = infra.raw_items()

    # WHEN 101 is withdrawn
    response = bank.withdraw(account_id, 101)

    # THEN 409 insufficient_funds, and the table is unchanged
    assert_json_error(response, 409, "insufficient_funds")
    assert infra.raw_items() == before
    assert bank.get(account_id).body["balance"] == 100


def test_credit_beyond_the_balance_limit_is_refused(bank, infra):
    # GIVEN an account one unit below the maximum balance: seeded through a snapshot at
    # version 1, as ten million real credits would take too long
    account_id = bank.open_id()
    created = bank.get(account_id).body["created_at"]
    near_limit = bank.account_models.AccountState(
        account_id, 1, bank.account_models.MAX_BALANCE - 1, created, created
    )
    assert bank.competitor().put_snapshot(near_limit)
    before = infra.raw_items()

    # WHEN a credit would pass MAX_BALANCE THEN 409 balance_limit_exceeded, nothing written
    assert_json_error(bank.credit(account_id, 2), 409, "balance_limit_exceeded")
    assert infra.raw_items() == before
    # AND reaching the limit exactly is allowed
    assert bank.credit(account_id, 1).body["balance"] == bank.account_models.MAX_BALANCE


# --------------------------------------------------------------------------- not found


@pytest.mark.parametrize("action", ["get", "credit", "withdraw", "history"])
def test_unknown_account_is_404_and_writes_nothing(bank, infra, action):
    # GIVEN no account WHEN it is read or commanded
    if action in ("credit", "withdraw"):
        response = getattr(bank, action)(UNKNOWN, 10)
    else:
        response = getattr(bank, action)(UNKNOWN)

    # THEN 404 not_found, and nothing is written
    assert_json_error(response, 404, "not_found")
    assert infra.raw_items() == []


def test_unknown_route_is_a_json_404(bank, es):
    # GIVEN a route the API does not have WHEN it reaches the handler THEN a JSON 404
    response = bank.call(es.api_event("DELETE", "/accounts", resource="/accounts"))
    assert_json_error(response, 404, "not_found")


# --------------------------------------------------------------------------- bad input


BAD_AMOUNT_BODIES = {
    "zero": {"amount": 0},
    "negative": {"amount": -5},
    "float": {"amount": 10.5},
    "integral float": {"amount": 10.0},
    "string": {"amount": "10"},
    "boolean": {"amount": True},
    "null": {"amount": None},
    "above maximum": {"amount": 100_000_001},
    "huge": {"amount": 10**40},
    "missing": {},
    "extra field": {"amount": 10, "currency": "EUR"},
}


@pytest.mark.parametrize("command", ["credit", "withdraw"])
@pytest.mark.parametrize("body", BAD_AMOUNT_BODIES.values(), ids=BAD_AMOUNT_BODIES.keys())
def test_bad_amounts_are_400_and_write_nothing(bank, infra, command, body):
    # GIVEN an account with some money
    account_id = bank.open_id()
    bank.credit(account_id, 1000)
    before = infra.raw_items()

    # WHEN a command carries a bad amount
    response = getattr(bank, command)(account_id, body)

    # THEN 400 invalid_request, and the table is unchanged
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == before


RAW_BAD_BODIES = {
    "empty": "",
    "not json": "amount=10",
    "truncated": '{"amount": 1',
    "array": "[10]",
    "number": "10",
    "too large": '{"amount": 1' + " " * 2000 + "}",
}


@pytest.mark.parametrize("body", RAW_BAD_BODIES.values(), ids=RAW_BAD_BODIES.keys())
def test_bad_bodies_are_400_and_write_nothing(bank, infra, body):
    # GIVEN an account WHEN a credit's body is not a valid amount object
    account_id = bank.open_id()
    before = infra.raw_items()
    response = bank.credit(account_id, body)
    # THEN 400 invalid_request and nothing is written
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == before


def test_base64_bodies_are_decoded(bank):
    # GIVEN an account WHEN API Gateway passes the body base64-encoded (binary media type)
    account_id = bank.open_id()
    response = bank.credit(account_id, {"amount": 42}, base64_body=True)
    # THEN it is read like a plain body
    assert response.status == 200 and response.body["balance"] == 42


def test_invalid_base64_is_400(bank, infra, es):
    account_id = bank.open_id()
    before = infra.raw_items()
    event = es.command_event(account_id, "credit", "!!!not-base64!!!")
    event["isBase64Encoded"] = True
    assert_json_error(bank.call(event), 400, "invalid_request")
    assert infra.raw_items() == before


@pytest.mark.parametrize("action", ["get", "credit", "history"])
def test_malformed_account_id_is_400(bank, infra, action):
    # GIVEN an id that is not a UUID WHEN it is used THEN 400 and nothing is written
    response = (
        getattr(bank, action)("not-a-uuid", 10)
        if action == "credit"
        else getattr(bank, action)("not-a-uuid")
    )
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == []


@pytest.mark.parametrize("body", ['{"owner": "alice"}', "[]", "nope"])
def test_open_account_refuses_any_body_but_an_empty_object(bank, infra, body):
    # GIVEN a body with fields or not an object WHEN an account is opened THEN 400
    assert_json_error(bank.open(body=body), 400, "invalid_request")
    assert infra.raw_items() == []


def test_open_account_accepts_an_empty_object(bank):
    # GIVEN the body {} WHEN an account is opened THEN it is
    assert bank.open(body={}).status == 201


# --------------------------------------------------------------------------- idempotency


def test_retried_credit_with_same_key_appends_nothing_and_replays_the_outcome(bank, infra, clock):
    # GIVEN a credit made with an Idempotency-Key
    account_id = bank.open_id()
    first = bank.credit(account_id, 700, headers={"Idempotency-Key": "pay-42"})
    assert first.status == 200 and "idempotent-replayed" not in first.headers

    # WHEN the client retries it (same key, same body), later
    clock.advance(30)
    retry = bank.credit(account_id, 700, headers={"Idempotency-Key": "pay-42"})

    # THEN it gets the first outcome, marked as a replay, and nothing more is appended
    assert retry.status == 200
    assert retry.body == first.body
    assert retry.headers["idempotent-replayed"] == "true"
    assert infra.versions(account_id) == [1, 2]
    assert bank.get(account_id).body["balance"] == 700


def test_retried_withdrawal_replays_even_when_the_funds_are_now_spent(bank, infra):
    # GIVEN a withdrawal of the whole balance, made with a key
    account_id = bank.open_id()
    bank.credit(account_id, 300)
    first = bank.withdraw(account_id, 300, headers={"Idempotency-Key": "w-1"})
    assert first.status == 200

    # WHEN it is retried (the balance is now 0, so re-running it would be an overdraft)
    retry = bank.withdraw(account_id, 300, headers={"Idempotency-Key": "w-1"})

    # THEN the first outcome is returned, not 409, and nothing is appended
    assert retry.status == 200 and retry.body == first.body
    assert infra.versions(account_id) == [1, 2, 3]


def test_same_key_for_a_different_command_is_422_and_writes_nothing(bank, infra):
    # GIVEN a credit of 100 keyed "k"
    account_id = bank.open_id()
    bank.credit(account_id, 100, headers={"Idempotency-Key": "k"})
    before = infra.raw_items()

    # WHEN the key is reused for another amount or another command
    different_amount = bank.credit(account_id, 101, headers={"Idempotency-Key": "k"})
    different_command = bank.withdraw(account_id, 100, headers={"Idempotency-Key": "k"})

    # THEN 422 and nothing is written
    assert_json_error(different_amount, 422, "idempotency_key_reused")
    assert_json_error(different_command, 422, "idempotency_key_reused")
    assert infra.raw_items() == before


def test_keys_are_scoped_by_caller_and_account(bank, infra, es):
    # GIVEN two accounts and a credit keyed "k" by alice on the first
    first, second = bank.open_id(), bank.open_id()
    bank.credit(first, 100, headers={"Idempotency-Key": "k"})

    # WHEN bob uses the same key on the same account, and alice on the other account
    by_bob = bank.credit(first, 100, headers={"Idempotency-Key": "k"}, user_arn=es.bob_arn)
    other_account = bank.credit(second, 100, headers={"Idempotency-Key": "k"})

    # THEN both are new commands
    assert by_bob.status == 200 and "idempotent-replayed" not in by_bob.headers
    assert other_account.status == 200 and "idempotent-replayed" not in other_account.headers
    assert bank.get(first).body["balance"] == 200
    assert bank.get(second).body["balance"] == 100


def test_refused_keyed_command_is_not_remembered(bank, infra):
    # GIVEN a keyed withdrawal refused for lack of funds
    account_id = bank.open_id()
    assert bank.withdraw(account_id, 50, headers={"Idempotency-Key": "w"}).status == 409

    # WHEN money arrives and the client retries with the same key
    bank.credit(account_id, 50)
    retry = bank.withdraw(account_id, 50, headers={"Idempotency-Key": "w"})

    # THEN the retry is evaluated afresh (only committed outcomes are replayed)
    assert retry.status == 200 and retry.body["balance"] == 0


def test_retried_open_with_same_key_returns_the_same_account(bank, infra, clock, es):
    # GIVEN an account opened with a key WHEN alice retries it and bob uses the same key
    first = bank.open(headers={"Idempotency-Key": "open-1"})
    clock.advance(5)
    retry = bank.open(headers={"Idempotency-Key": "open-1"})
    by_bob = bank.open(headers={"Idempotency-Key": "open-1"}, user_arn=es.bob_arn)

    # THEN alice gets the same account (nothing appended), bob a new one
    assert first.status == retry.status == 201
    assert retry.body == first.body
    assert retry.headers["idempotent-replayed"] == "true"
    assert by_bob.body["account_id"] != first.body["account_id"]
    assert len(infra.event_items()) == 2


@pytest.mark.parametrize("key", ["", "x" * 129, "caf\u00e9"])
def test_invalid_idempotency_keys_are_400(bank, infra, key):
    # GIVEN an empty, too long or non-ASCII key WHEN a credit carries it THEN 400
    account_id = bank.open_id()
    before = infra.raw_items()
    response = bank.credit(account_id, 10, headers={"Idempotency-Key": key})
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == before


def test_concurrent_twin_with_the_same_key_commits_once(bank, infra, es):
    # GIVEN a keyed credit; its twin (same key) commits between our read and our write
    account_id = bank.open_id()
    competitor = bank.competitor()

    def twin_commits(n: int) -> None:
        if n == 0:
            bank.account_service.execute_command(
                competitor,
                account_id,
                bank.account_models.CommandType.CREDIT,
                100,
                settings=bank.api.SETTINGS,
                clock=bank.clock,
                caller=es.alice_arn,
                idempotency_key="twin",
            )

    bank.before_write(twin_commits)

    # WHEN our request writes
    response = bank.credit(account_id, 100, headers={"Idempotency-Key": "twin"})

    # THEN the transaction fails on the idempotency record and the twin's outcome is replayed
    assert response.status == 200
    assert response.headers["idempotent-replayed"] == "true"
    assert infra.versions(account_id) == [1, 2]
    assert bank.get(account_id).body["balance"] == 100


# --------------------------------------------------------------------------- optimistic locking


def _competing_append(bank: Any, account_id: str, command: str, amount: int) -> None:
    bank.account_service.execute_command(
        bank.competitor(),
        account_id,
        bank.account_models.CommandType(command),
        amount,
        settings=bank.api.SETTINGS,
        clock=bank.clock,
    )


def test_conflict_is_retried_after_reloading(bank, infra):
    # GIVEN a balance of 100, and another writer that credits 5 just before our first write
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    bank.before_write(
        lambda n: _competing_append(bank, account_id, "credit", 5) if n == 0 else None
    )
    bank.calls.clear()

    # WHEN we withdraw 30
    response = bank.withdraw(account_id, 30)

    # THEN our first append lost (version 3 was taken), we reloaded and appended version 4
    assert response.status == 200
    assert response.body["version"] == 4 and response.body["balance"] == 75
    assert bank.calls.operations.count("PutItem") == 2
    assert len(bank.sleep.calls) == 1 and 0 <= bank.sleep.calls[0] <= 0.2
    assert infra.versions(account_id) == [1, 2, 3, 4]
    assert bank.get(account_id).body["balance"] == 75


def test_conflict_re_checks_the_rule_so_a_race_cannot_overdraw(bank, infra):
    # GIVEN a balance of 100, and another writer that withdraws 60 just before our write
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    bank.before_write(
        lambda n: _competing_append(bank, account_id, "withdraw", 60) if n == 0 else None
    )

    # WHEN we withdraw 60 (fine against the state we read first)
    response = bank.withdraw(account_id, 60)

    # THEN after the reload the rule refuses it: 409 insufficient_funds, balance 40
    assert_json_error(response, 409, "insufficient_funds")
    assert infra.versions(account_id) == [1, 2, 3]
    assert bank.get(account_id).body["balance"] == 40


def test_endless_conflicts_give_409_concurrent_update_never_500(bank, infra):
    # GIVEN another writer that credits 1 before every one of our writes
    account_id = bank.open_id()
    bank.before_write(lambda n: _competing_append(bank, account_id, "credit", 1))

    # WHEN we credit 10
    response = bank.credit(account_id, 10)

    # THEN after MAX_APPEND_ATTEMPTS lost races: 409 concurrent_update with Retry-After
    assert_json_error(response, 409, "concurrent_update")
    assert response.headers["retry-after"] == "1"
    attempts = int(bank.api.SETTINGS.max_append_attempts)
    # AND only the competitor's events exist: ours was never written
    assert infra.versions(account_id) == list(range(1, attempts + 2))
    assert {i["amount"]["N"] for i in infra.event_items(account_id)[1:]} == {"1"}
    # AND it backed off (jittered, capped) between attempts, never after the last one
    assert len(bank.sleep.calls) == attempts - 1
    assert all(0 <= delay <= bank.account_models.BACKOFF_CAP_SECONDS for delay in bank.sleep.calls)


# --------------------------------------------------------------------------- snapshots


def _make_events(bank: Any, account_id: str, count: int) -> None:
    for _ in range(count):
        assert bank.credit(account_id, 1).status == 200


def test_snapshot_is_written_every_k_events(bank, infra, es):
    # GIVEN an account (version 1) WHEN it reaches version 2K + 2
    account_id = bank.open_id()
    _make_events(bank, account_id, 2 * es.snapshot_interval + 1)

    # THEN the snapshot covers version 2K, with the balance as of that version
    snapshot = infra.snapshot(account_id)
    assert snapshot is not None
    assert snapshot["snapshot_version"] == {"N": str(2 * es.snapshot_interval)}
    assert snapshot["balance"] == {"N": str(2 * es.snapshot_interval - 1)}
    assert snapshot["kind"] == {"S": "snapshot"}


@pytest.mark.parametrize(("snapshots", "extra"), [(2, 0), (9, 3), (20, 4)])
def test_reads_cost_two_requests_of_at_most_k_items(bank, infra, es, snapshots, extra):
    # GIVEN an account with a short or a long history
    history_length = es.snapshot_interval * snapshots + extra
    account_id = bank.open_id()
    _make_events(bank, account_id, history_length - 1)
    bank.calls.clear()

    # WHEN its balance is read
    response = bank.get(account_id)

    # THEN the right state comes from one GetItem (snapshot) and one Query
    assert response.body["version"] == history_length
    assert response.body["balance"] == history_length - 1
    assert bank.calls.operations == ["GetItem", "Query"]
    # AND at most K items were read (the snapshot plus fewer than K events)
    assert bank.calls.items_read <= es.snapshot_interval


def test_commands_cost_a_constant_number_of_requests(bank, infra, es):
    # GIVEN a long history
    account_id = bank.open_id()
    _make_events(bank, account_id, es.snapshot_interval * 6)
    costs = []
    # WHEN commands run at versions that are not snapshot points
    for _ in range(es.snapshot_interval - 1):
        bank.calls.clear()
        bank.credit(account_id, 1)
        costs.append(bank.calls.operations)
    # THEN each is a GetItem, a Query and a PutItem (plus one snapshot PutItem every K)
    plain = ["GetItem", "Query", "PutItem"]
    assert all(cost in (plain, [*plain, "PutItem"]) for cost in costs)
    assert costs.count([*plain, "PutItem"]) <= 1


def test_missing_snapshot_still_gives_the_right_state(bank, infra, es):
    # GIVEN a history of 3K + 2 events whose snapshot is lost
    account_id = bank.open_id()
    _make_events(bank, account_id, 3 * es.snapshot_interval + 1)
    expected = bank.get(account_id).body
    infra.delete_snapshot(account_id)
    bank.calls.clear()

    # WHEN it is read THEN the state is the same: the fold starts from version 1
    assert bank.get(account_id).body == expected
    # AND only the number of pages grew
    assert bank.calls.operations[0] == "GetItem"
    assert bank.calls.operations.count("Query") > 1


def test_read_before_the_snapshot_write_still_takes_two_requests(bank, infra, es):
    # GIVEN 3K events whose newest snapshot (version 3K) is not written yet: the snapshot
    # still covers version 2K, so K events follow it
    k = es.snapshot_interval
    account_id = bank.open_id()
    _make_events(bank, account_id, 3 * k - 1)
    expected = bank.get(account_id).body
    infra.delete_snapshot(account_id)
    older = bank.account_models.AccountState(
        account_id, 2 * k, 2 * k - 1, expected["created_at"], "x"
    )
    assert bank.competitor().put_snapshot(older)
    bank.calls.clear()

    # WHEN the balance is read THEN it is right, in two requests reading K + 1 items
    assert bank.get(account_id).body == expected
    assert bank.calls.operations == ["GetItem", "Query"]
    assert bank.calls.items_read == k + 1


def test_late_snapshot_never_overwrites_a_newer_one(bank, infra, es):
    # GIVEN an account whose snapshot covers version 2K
    account_id = bank.open_id()
    _make_events(bank, account_id, 2 * es.snapshot_interval)
    expected = bank.get(account_id).body

    # WHEN a slow writer tries to store an older snapshot (version K)
    stale = bank.account_models.AccountState(account_id, es.snapshot_interval, 999, "a", "b")
    stored = bank.competitor().put_snapshot(stale)

    # THEN the condition keeps the newer one and the read is unchanged
    assert stored is False
    assert infra.snapshot(account_id)["snapshot_version"] == {"N": str(2 * es.snapshot_interval)}
    assert bank.get(account_id).body == expected


def test_older_snapshot_makes_reads_longer_not_wrong(bank, infra, es):
    # GIVEN a snapshot that lags: it covers version K although the history is at 3K + 1
    account_id = bank.open_id()
    _make_events(bank, account_id, 3 * es.snapshot_interval)
    expected = bank.get(account_id).body
    infra.delete_snapshot(account_id)
    lagging = bank.account_models.AccountState(
        account_id, es.snapshot_interval, es.snapshot_interval - 1, expected["created_at"], "x"
    )
    assert bank.competitor().put_snapshot(lagging)

    # WHEN it is read THEN the state is right
    assert bank.get(account_id).body == expected


def test_failed_snapshot_write_does_not_fail_the_command(bank, infra, monkeypatch, es):
    # GIVEN snapshot writes that fail (e.g. throttled)
    from botocore.exceptions import ClientError

    account_id = bank.open_id()

    def failing(state: Any) -> bool:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")

    monkeypatch.setattr(bank.api.store, "put_snapshot", failing)

    # WHEN the command that reaches a snapshot point runs THEN it still succeeds
    _make_events(bank, account_id, es.snapshot_interval)
    assert infra.snapshot(account_id) is None
    assert bank.get(account_id).body["version"] == es.snapshot_interval + 1


# --------------------------------------------------------------------------- history


def test_history_pages_oldest_first_with_a_cursor(bank, infra):
    # GIVEN an account with 7 events
    account_id = bank.open_id()
    _make_events(bank, account_id, 6)

    # WHEN the history is read 3 at a time, following next_cursor
    versions, cursors, query = [], [], {"limit": "3"}
    while True:
        page = bank.history(account_id, **query)
        assert page.status == 200
        versions += [event["version"] for event in page.body["events"]]
        cursors.append(page.body["next_cursor"])
        if page.body["next_cursor"] is None:
            break
        query = {"limit": "3", "cursor": page.body["next_cursor"]}

    # THEN every event comes once, in order, over 3 pages, and no snapshot is listed
    assert versions == [1, 2, 3, 4, 5, 6, 7]
    assert len(cursors) == 3 and cursors[-1] is None
    first = bank.history(account_id, limit="1").body["events"][0]
    assert first["type"] == "AccountCreated" and first["event_id"] == f"{account_id}:1"


def test_history_of_exactly_one_page_has_no_cursor(bank):
    # GIVEN 3 events WHEN they are read 3 at a time THEN one page and no cursor
    account_id = bank.open_id()
    _make_events(bank, account_id, 2)
    page = bank.history(account_id, limit="3")
    assert [e["version"] for e in page.body["events"]] == [1, 2, 3]
    assert page.body["next_cursor"] is None


def test_history_default_page_size(bank):
    # GIVEN a new account WHEN its history is read without parameters THEN one page
    account_id = bank.open_id()
    body = bank.history(account_id).body
    assert body == {
        "account_id": account_id,
        "events": [body["events"][0]],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "garbage"},
        {"cursor": base64.urlsafe_b64encode(b"v1:0").decode()},
        {"cursor": base64.urlsafe_b64encode(b"v2:5").decode()},
        {"page": "2"},
    ],
)
def test_bad_history_parameters_are_400(bank, query):
    # GIVEN an account WHEN its history is asked with a bad limit, cursor or parameter
    # THEN 400
    account_id = bank.open_id()
    assert_json_error(bank.history(account_id, **query), 400, "invalid_request")


def test_twenty_interleaved_withdrawals_of_10_from_100_succeed_exactly_10_times(bank, infra):
    # GIVEN a balance of 100 and 20 withdrawals of 10, each on its own client (its own
    # Lambda instance), interleaved as tightly as possible: every withdrawal, right before
    # its first write, lets the next one run to the end. All 20 read the same state;
    # the innermost commits first and every other one loses a race and reloads.
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    outcomes: dict[int, str] = {}

    def withdraw(index: int) -> None:
        client = boto3.client("dynamodb", region_name="us-east-1")
        if index + 1 < 20:
            fired: list[bool] = []

            def next_one_runs_first(**_: Any) -> None:
                if not fired:
                    fired.append(True)
                    withdraw(index + 1)

            client.meta.events.register("before-call.dynamodb.PutItem", next_one_runs_first)
        try:
            result = bank.account_service.execute_command(
                bank.account_store.EventStore(client, bank.api.store._table_name),
                account_id,
                bank.account_models.CommandType.WITHDRAW,
                10,
                settings=bank.api.SETTINGS,
                clock=bank.clock,
                sleep=bank.sleep,
            )
            outcomes[index] = f"ok:{result.body['version']}"
        except bank.account_models.InsufficientFundsError:
            outcomes[index] = "insufficient_funds"

    # WHEN they run
    withdraw(0)

    # THEN exactly 10 succeed, the balance is 0, versions are contiguous, no conflict
    # was given up on (each lost one race) and none raised anything else
    assert sum(o.startswith("ok") for o in outcomes.values()) == 10
    assert sum(o == "insufficient_funds" for o in outcomes.values()) == 10
    assert bank.get(account_id).body["balance"] == 0
    assert infra.versions(account_id) == list(range(1, 13))
    assert len(bank.sleep.calls) == 19
