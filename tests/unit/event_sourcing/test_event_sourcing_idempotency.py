"""Issue 16, items 5 and 6 for event sourcing: the same request is told by its meaning,
and every replay is the first answer byte for byte (also to concurrent twins)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.events import assert_json_error
from tests.unit.event_sourcing.conftest import ALICE_ARN, TABLE_NAME


@pytest.mark.parametrize(
    "spelling", ['{"amount":700}', '{ "amount" : 700 }\n'], ids=["compact", "spaced"]
)
def test_same_command_spelled_differently_replays_the_first_answer_byte_for_byte(
    bank, infra, clock, spelling
):
    # GIVEN a keyed credit of 700
    account_id = bank.open_id()
    first = bank.credit(account_id, {"amount": 700}, headers={"Idempotency-Key": "pay-1"})
    assert first.status == 200

    # WHEN it is retried later with the same meaning, spelled another way
    clock.advance(30)
    retry = bank.credit(account_id, spelling, headers={"Idempotency-Key": "pay-1"})

    # THEN the first answer comes back: same status, same bytes; nothing appended
    assert retry.status == first.status
    assert retry.raw_body == first.raw_body
    assert retry.headers["idempotent-replayed"] == "true"
    assert infra.versions(account_id) == [1, 2]


def test_a_float_spelling_of_the_amount_is_400_not_a_replay(bank, infra):
    # GIVEN a keyed credit of 700 WHEN the retry spells the amount 7e2 (a JSON float)
    account_id = bank.open_id()
    bank.credit(account_id, 700, headers={"Idempotency-Key": "pay-1"})
    retry = bank.credit(account_id, '{"amount":7e2}', headers={"Idempotency-Key": "pay-1"})
    # THEN the strict model refuses it, as without a key: amounts are integers only
    assert_json_error(retry, 400, "invalid_request")


def test_same_key_with_another_amount_is_422(bank, infra):
    # GIVEN a keyed withdrawal of 10 WHEN the key comes back with 11 THEN 422, no write
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    bank.withdraw(account_id, 10, headers={"Idempotency-Key": "w"})
    before = infra.raw_items()
    assert_json_error(
        bank.withdraw(account_id, 11, headers={"Idempotency-Key": "w"}),
        422,
        "idempotency_key_reused",
    )
    assert infra.raw_items() == before


def test_ten_interleaved_withdrawals_with_one_key_apply_once_and_answer_the_same_bytes(bank, infra):
    # GIVEN a balance of 100 and ten HTTP withdrawals of 10 with one Idempotency-Key,
    # interleaved as tightly as possible: each, right before its write, lets the next
    # one run to the end. All ten find no record; the innermost commits first, every
    # other one is cancelled on the record and must answer from it.
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    answers: dict[int, Any] = {}
    started = {"n": 0}

    def next_request_runs_first(n: int) -> None:
        if n == started["n"] and started["n"] < 9:
            started["n"] += 1
            index = started["n"]
            answers[index] = bank.withdraw(account_id, 10, headers={"Idempotency-Key": "ten"})

    bank.before_write(next_request_runs_first)

    # WHEN they run
    answers[0] = bank.withdraw(account_id, 10, headers={"Idempotency-Key": "ten"})

    # THEN the withdrawal is applied once and all ten answers are the first one's bytes
    assert len(answers) == 10
    first = answers[9]
    assert first.status == 200 and "idempotent-replayed" not in first.headers
    for index in range(9):
        assert answers[index].status == first.status
        assert answers[index].raw_body == first.raw_body
        assert answers[index].headers["idempotent-replayed"] == "true"
    assert infra.versions(account_id) == [1, 2, 3]
    assert bank.get(account_id).body["balance"] == 90


@pytest.mark.parametrize("retry_body", [None, "{}", " { } "], ids=["none", "empty", "spaced"])
def test_open_account_with_an_equivalent_body_replays_byte_for_byte(bank, infra, clock, retry_body):
    # GIVEN an account opened with a key and no body
    first = bank.open(headers={"Idempotency-Key": "open-1"})
    assert first.status == 201

    # WHEN the key comes back with no body, or an empty object spelled some way
    clock.advance(5)
    retry = bank.open(headers={"Idempotency-Key": "open-1"}, body=retry_body)

    # THEN the first answer, byte for byte; one account
    assert retry.status == 201
    assert retry.raw_body == first.raw_body
    assert retry.headers["location"] == first.headers["location"]
    assert len(infra.event_items()) == 1


def test_concurrent_opens_with_one_key_create_one_account_and_answer_the_same_bytes(bank, infra):
    # GIVEN five opens with one key, each letting the next run before its own write
    answers: dict[int, Any] = {}
    started = {"n": 0}

    def next_request_runs_first(n: int) -> None:
        if n == started["n"] and started["n"] < 4:
            started["n"] += 1
            index = started["n"]
            answers[index] = bank.open(headers={"Idempotency-Key": "o"})

    bank.before_write(next_request_runs_first)

    # WHEN they run
    answers[0] = bank.open(headers={"Idempotency-Key": "o"})

    # THEN one account, and every answer is the first one's bytes
    first = answers[4]
    assert {a.raw_body for a in answers.values()} == {first.raw_body}
    assert {a.status for a in answers.values()} == {201}
    assert len(infra.event_items()) == 1


def test_a_record_stored_before_whole_answers_still_replays(bank, infra):
    # GIVEN a keyed credit whose record holds only the body, keys sorted (the old form)
    account_id = bank.open_id()
    first = bank.credit(account_id, 70, headers={"Idempotency-Key": "old"})
    record_id = bank.parsing.idempotency_record_id(ALICE_ARN, account_id, "old")
    infra.dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"account_id": {"S": record_id}, "version": {"N": "0"}},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "response"},
        ExpressionAttributeValues={
            ":r": {"S": json.dumps(first.body, separators=(",", ":"), sort_keys=True)}
        },
    )

    # WHEN the client retries THEN it gets that outcome (200, same content), nothing appended
    retry = bank.credit(account_id, 70, headers={"Idempotency-Key": "old"})
    assert retry.status == 200 and retry.body == first.body
    assert retry.headers["idempotent-replayed"] == "true"
    assert infra.versions(account_id) == [1, 2]
