"""account_api.handler against moto: commands and reads, not-found answers."""

from __future__ import annotations

from unittest.mock import ANY

import pytest

from tests.support.answers import created_id
from tests.support.events import assert_json_error
from tests.unit.event_sourcing.conftest import STAGE, api_event

UNKNOWN = "8d1c4b7e-0000-4000-8000-000000000000"


# --------------------------------------------------------------------------- happy path


def test_open_account_appends_created_event_and_answers_201(bank, infra):
    # GIVEN an empty table
    # WHEN a client opens an account
    response = bank.open()

    # THEN 201 with the new account at version 1, balance 0, and a Location under the stage
    account_id = created_id(response, 201, "account_id", f"/{STAGE}/accounts")
    location = f"/{STAGE}/accounts/{account_id}"
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
            "write_token": {"S": ANY},
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
    near_limit = bank.models.AccountState(
        account_id, 1, bank.models.MAX_BALANCE - 1, created, created
    )
    assert bank.competitor().put_snapshot(near_limit)
    before = infra.raw_items()

    # WHEN a credit would pass MAX_BALANCE THEN 409 balance_limit_exceeded, nothing written
    assert_json_error(bank.credit(account_id, 2), 409, "balance_limit_exceeded")
    assert infra.raw_items() == before
    # AND reaching the limit exactly is allowed
    assert bank.credit(account_id, 1).body["balance"] == bank.models.MAX_BALANCE


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


def test_unknown_route_is_a_json_404(bank):
    # GIVEN a route the API does not have WHEN it reaches the handler THEN a JSON 404
    response = bank.call_api(api_event("DELETE", "/accounts", resource="/accounts"))
    assert_json_error(response, 404, "not_found")
