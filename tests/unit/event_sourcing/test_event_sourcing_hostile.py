"""Hostile clients: strict JSON and single-valued headers on the account commands."""

from __future__ import annotations

import pytest

from tests.support.events import assert_json_error
from tests.support.hostile import CONFLICTING_KEYS, hostile_requests

HOSTILE = hostile_requests(
    '{"amount": @@}',
    valid_slot="5",
    # The example: the last value wins, so this credited 5.
    duplicate_top='{"amount": 0, "amount": 5}',
)


@pytest.mark.parametrize("command", ["credit", "withdraw"])
@pytest.mark.parametrize(("body", "multi_value_headers"), HOSTILE)
def test_hostile_command_is_400_and_appends_nothing(
    bank, infra, command, body, multi_value_headers
):
    # GIVEN an open account with money on it
    account_id = bank.open_id()
    assert bank.credit(account_id, 100).status == 200
    before = infra.raw_items()

    # WHEN a body that is not strict JSON, or two different keys, is sent
    send = bank.credit if command == "credit" else bank.withdraw
    response = send(account_id, body, multi_value_headers=multi_value_headers)

    # THEN 400 invalid_request in the JSON error shape, and no item is written
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == before


@pytest.mark.parametrize(
    ("body", "multi_value_headers"),
    [
        pytest.param("{}", CONFLICTING_KEYS, id="conflicting-idempotency-keys"),
        pytest.param('{"a": {"b": 1, "b": 2}}', None, id="duplicate-key-nested"),
        pytest.param("[" * 5_000 + "]" * 5_000, None, id="deep-nesting-5000"),
    ],
)
def test_hostile_open_is_400_and_writes_nothing(bank, infra, body, multi_value_headers):
    # GIVEN no account WHEN an open request is hostile
    response = bank.open(body=body, multi_value_headers=multi_value_headers)

    # THEN 400 invalid_request, and nothing is written
    assert_json_error(response, 400, "invalid_request")
    assert infra.raw_items() == []
