"""account_api.handler against moto: idempotency keys on commands."""

from __future__ import annotations

import pytest

from tests.support.events import assert_json_error
from tests.unit.event_sourcing.conftest import ALICE_ARN, BOB_ARN

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


def test_keys_are_scoped_by_caller_and_account(bank, infra):
    # GIVEN two accounts and a credit keyed "k" by alice on the first
    first, second = bank.open_id(), bank.open_id()
    bank.credit(first, 100, headers={"Idempotency-Key": "k"})

    # WHEN bob uses the same key on the same account, and alice on the other account
    by_bob = bank.credit(first, 100, headers={"Idempotency-Key": "k"}, user_arn=BOB_ARN)
    other_account = bank.credit(second, 100, headers={"Idempotency-Key": "k"})

    # THEN both are new commands
    assert by_bob.status == 200 and "idempotent-replayed" not in by_bob.headers
    assert other_account.status == 200 and "idempotent-replayed" not in other_account.headers
    assert bank.get(first).body["balance"] == 200
    assert bank.get(second).body["balance"] == 100


def test_a_keyed_withdrawal_retried_from_another_session_of_the_role_is_applied_once(bank, infra):
    # GIVEN an account of 100 and a keyed withdrawal of 30 from a role session
    role = "arn:aws:sts::123456789012:assumed-role/Payments"
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    key = {"Idempotency-Key": "payout-9"}
    first = bank.withdraw(account_id, 30, headers=key, user_arn=f"{role}/botocore-session-1")

    # WHEN the client restarts and retries under the session name its new process got
    retry = bank.withdraw(account_id, 30, headers=key, user_arn=f"{role}/botocore-session-2")

    # THEN the retry replays the first answer: the money left once
    assert first.status == retry.status == 200
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.raw_body == first.raw_body
    assert bank.get(account_id).body["balance"] == 70


def test_refused_keyed_command_is_not_remembered(bank, infra):
    # GIVEN a keyed withdrawal refused for lack of funds
    account_id = bank.open_id()
    assert bank.withdraw(account_id, 50, headers={"Idempotency-Key": "w"}).status == 409

    # WHEN money arrives and the client retries with the same key
    bank.credit(account_id, 50)
    retry = bank.withdraw(account_id, 50, headers={"Idempotency-Key": "w"})

    # THEN the retry is evaluated afresh (only committed outcomes are replayed)
    assert retry.status == 200 and retry.body["balance"] == 0


def test_retried_open_with_same_key_returns_the_same_account(bank, infra, clock):
    # GIVEN an account opened with a key WHEN alice retries it and bob uses the same key
    first = bank.open(headers={"Idempotency-Key": "open-1"})
    clock.advance(5)
    retry = bank.open(headers={"Idempotency-Key": "open-1"})
    by_bob = bank.open(headers={"Idempotency-Key": "open-1"}, user_arn=BOB_ARN)

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


def test_concurrent_twin_with_the_same_key_commits_once(bank, infra):
    # GIVEN a keyed credit; its twin (same key) commits between our read and our write
    account_id = bank.open_id()
    competitor = bank.competitor()

    def twin_commits(n: int) -> None:
        if n == 0:
            bank.service.execute_command(
                competitor,
                account_id,
                bank.models.CommandType.CREDIT,
                100,
                settings=bank.api.SETTINGS,
                clock=bank.clock,
                caller=ALICE_ARN,
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
