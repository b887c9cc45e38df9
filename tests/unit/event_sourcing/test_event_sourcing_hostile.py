"""Hostile clients: strict JSON and unambiguous headers on the account commands."""

from __future__ import annotations

import pytest

from tests.support.events import assert_json_error
from tests.support.hostile import AMBIGUOUS_KEYS, KEYED, hostile_requests

HOSTILE = hostile_requests(
    '{"amount": @@}',
    valid_slot="5",
    # The example: the last value wins, so this credited 5.
    duplicate_top='{"amount": 0, "amount": 5}',
)
AMBIGUOUS = pytest.mark.parametrize(
    "ambiguous_options", list(AMBIGUOUS_KEYS.values()), ids=list(AMBIGUOUS_KEYS)
)


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
        pytest.param('{"a": {"b": 1, "b": 2}}', {}, 400, "invalid_request", id="duplicate-nested"),
        pytest.param("[" * 5_000 + "]" * 5_000, {}, 400, "invalid_request", id="deep-nesting"),
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
