"""Issue 16, items 5 and 6 for event sourcing: the same request is told by its meaning,
and every replay is the first answer byte for byte (also to concurrent twins)."""

from __future__ import annotations

import json

import pytest

from tests.support.answers import assert_all_got_the_winners_answer
from tests.support.events import assert_json_error
from tests.support.interleave import interleaved
from tests.unit.event_sourcing.conftest import ALICE_ARN, TABLE_NAME, api_event

#: The event store's write requests: a request runs the next one just before its first.
WRITES = ("PutItem", "TransactWriteItems")


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

    # WHEN they run
    answers, first = interleaved(
        bank.api.store._client,
        WRITES,
        [10] * 10,
        lambda amount: bank.withdraw(account_id, amount, headers={"Idempotency-Key": "ten"}),
    )

    # THEN the withdrawal is applied once and all ten answers are the first one's bytes
    assert_all_got_the_winners_answer(answers, first, 200)
    assert "idempotent-replayed" not in first.headers
    assert all(answer.headers["idempotent-replayed"] == "true" for answer in answers[:-1])
    assert infra.versions(account_id) == [1, 2, 3]
    assert bank.get(account_id).body["balance"] == 90


def test_a_keyed_retry_that_loads_after_its_twin_committed_replays_and_is_not_refused(bank, infra):
    # GIVEN a balance of 100, and a withdrawal of all of it with one key sent twice (a
    # client retrying while its first attempt still runs)
    account_id = bank.open_id()
    bank.credit(account_id, 100)

    # WHEN the retry finds no record of the key, then the first attempt commits, and
    # only then the retry loads the account (interleaved at the Query of the load)
    answers, first = interleaved(
        bank.api.store._client,
        "Query",
        [100, 100],
        lambda amount: bank.withdraw(account_id, amount, headers={"Idempotency-Key": "once"}),
    )

    # THEN both got the first answer, byte for byte: the retry's state holds its twin's
    # withdrawal, which is no reason to refuse it (409 insufficient_funds told the
    # client the money had not moved; a credit meeting the balance limit is alike)
    assert_all_got_the_winners_answer(answers, first, 200)
    assert infra.versions(account_id) == [1, 2, 3]


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


def test_an_open_retried_through_another_base_path_replays_the_first_answer(bank, infra):
    # GIVEN an account opened with a key through the stage's own URL (/api/accounts)
    first = bank.open(headers={"Idempotency-Key": "open-2"})
    assert first.status == 201

    # WHEN the client retries through a custom domain whose base path is /bank
    event = api_event(
        "POST", "/accounts", resource="/accounts", headers={"Idempotency-Key": "open-2"}
    )
    event["requestContext"]["path"] = "/bank/accounts"
    retry = bank.call_api(event)

    # THEN the first answer byte for byte (its links and Location), nothing appended
    assert retry.status == 201
    assert retry.raw_body == first.raw_body
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert len(infra.event_items()) == 1


def test_concurrent_opens_with_one_key_create_one_account_and_answer_the_same_bytes(bank, infra):
    # GIVEN five opens with one key, each letting the next run before its own write
    # WHEN they run
    answers, first = interleaved(
        bank.api.store._client,
        WRITES,
        [{"Idempotency-Key": "o"}] * 5,
        lambda headers: bank.open(headers=headers),
    )

    # THEN one account, and every answer is the first one's bytes
    assert_all_got_the_winners_answer(answers, first, 201)
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
