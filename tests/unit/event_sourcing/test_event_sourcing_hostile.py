"""Hostile clients: strict JSON, unambiguous keys and JSON media types on the account API."""

from __future__ import annotations

import pytest

from tests.support.events import assert_json_error
from tests.support.hostile import (
    AMBIGUOUS_KEYS,
    JSON_SPELLINGS,
    KEYED,
    NOT_JSON,
    hostile_requests,
    keyed,
    parametrize_by,
    within_limit,
)
from tests.unit.event_sourcing.conftest import MAX_BODY_BYTES

# The API's 1 KiB limit: the larger hostile bodies are refused by their size.
HOSTILE = within_limit(
    hostile_requests(
        '{"amount": @@}',
        valid_slot="5",
        # The example: the last value wins, so this credited 5.
        duplicate_top='{"amount": 0, "amount": 5}',
    ),
    max_bytes=MAX_BODY_BYTES,
)
AMBIGUOUS = parametrize_by(AMBIGUOUS_KEYS, "ambiguous_options")


@pytest.mark.parametrize("command", ["credit", "withdraw"])
@pytest.mark.parametrize(("body", "hostile_options", "status", "code"), HOSTILE)
def test_hostile_command_is_4xx_and_appends_nothing(
    bank, infra, command, body, hostile_options, status, code
):
    # GIVEN an open account with money on it
    account_id = bank.open_id()
    assert bank.credit(account_id, 100).status == 200
    before = infra.raw_items()

    # WHEN a body that is not strict JSON, or a valid one with ambiguous headers, is sent
    send = bank.credit if command == "credit" else bank.withdraw
    response = send(account_id, body, **hostile_options)

    # THEN the 4xx in the JSON error shape, and no item is written
    assert_json_error(response, status, code)
    assert infra.raw_items() == before


@pytest.mark.parametrize(
    ("body", "hostile_options", "status", "code"),
    [
        *[
            pytest.param("{}", options, 400, "ambiguous_idempotency_key", id=name)
            for name, options in AMBIGUOUS_KEYS.items()
        ],
        pytest.param(None, AMBIGUOUS_KEYS["repeated-key"], 400, "ambiguous_idempotency_key"),
        *[
            pytest.param("{}", options, 415, "unsupported_media_type", id=name)
            for name, options in NOT_JSON.items()
        ],
        pytest.param('{"a": {"b": 1, "b": 2}}', {}, 400, "invalid_request", id="duplicate-nested"),
        pytest.param("[" * 40 + "]" * 40, {}, 400, "invalid_request", id="deep-nesting"),
        pytest.param("[" * 600 + "]" * 600, {}, 400, "payload_too_large", id="over-the-limit"),
    ],
)
def test_hostile_open_is_4xx_and_writes_nothing(bank, infra, body, hostile_options, status, code):
    # GIVEN no account WHEN an open request is hostile
    response = bank.open(body=body, **hostile_options)

    # THEN the 4xx in the JSON error shape, and nothing is written
    assert_json_error(response, status, code)
    assert infra.raw_items() == []


@AMBIGUOUS
def test_an_ambiguous_key_after_a_keyed_credit_is_refused_not_replayed(
    bank, infra, ambiguous_options
):
    # GIVEN an account credited with the key k-1
    account_id = bank.open_id()
    assert bank.credit(account_id, 100, **KEYED).status == 200
    before = infra.raw_items()

    # WHEN the same credit comes with k-1 repeated or folded (or with another key)
    response = bank.credit(account_id, 100, **ambiguous_options)

    # THEN 400 ambiguous_idempotency_key, not the first answer, and nothing is appended
    assert_json_error(response, 400, "ambiguous_idempotency_key")
    assert infra.raw_items() == before


@AMBIGUOUS
def test_an_ambiguous_key_after_a_keyed_open_is_refused_not_replayed(
    bank, infra, ambiguous_options
):
    # GIVEN an account opened with the key k-1
    assert bank.open(**KEYED).status == 201
    before = infra.raw_items()

    # WHEN the open comes again with k-1 repeated or folded
    response = bank.open(**ambiguous_options)

    # THEN 400 ambiguous_idempotency_key, and no second account
    assert_json_error(response, 400, "ambiguous_idempotency_key")
    assert infra.raw_items() == before


def test_an_open_without_a_body_has_no_media_type_to_check(bank, infra):
    # GIVEN no body (the open takes none) WHEN it comes with a Content-Type of another
    # media type (some clients send one on every POST)
    response = bank.open(headers={"Content-Type": "text/plain"})

    # THEN there is no content to be of that type: the account is opened
    assert response.status == 201, response.body


@parametrize_by(JSON_SPELLINGS, "json_options")
def test_every_spelling_of_json_is_read_and_a_keyed_credit_replays(bank, infra, json_options):
    # GIVEN a keyed credit declared as application/json
    account_id = bank.open_id()
    first = bank.credit(account_id, 100, **KEYED)
    assert first.status == 200
    before = infra.raw_items()

    # WHEN it is retried declaring JSON another way (or not at all)
    retry = bank.credit(account_id, 100, **keyed(json_options))

    # THEN the first answer, byte for byte, and nothing appended
    assert (retry.status, retry.raw_body) == (first.status, first.raw_body)
    assert retry.headers["idempotent-replayed"] == "true"
    assert infra.raw_items() == before
    # AND without a key, the credit is read as JSON too
    assert bank.credit(account_id, 100, **json_options).status == 200


@parametrize_by(NOT_JSON, "not_json_options")
def test_a_keyed_credit_retried_as_another_media_type_is_415_not_a_replay(
    bank, infra, not_json_options
):
    # GIVEN a keyed credit, answered
    account_id = bank.open_id()
    first = bank.credit(account_id, 100, **KEYED)
    before = infra.raw_items()

    # WHEN the same bytes come with the key, declared as something else than JSON
    response = bank.credit(account_id, 100, **keyed(not_json_options))

    # THEN 415, nothing appended, and a retry declared as JSON gets the first answer
    assert_json_error(response, 415, "unsupported_media_type")
    assert infra.raw_items() == before
    retry = bank.credit(account_id, 100, **KEYED)
    assert (retry.status, retry.raw_body) == (first.status, first.raw_body)
