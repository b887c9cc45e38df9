"""accounts.py without Lambda: the fold, settings and cursors."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest


@pytest.fixture
def accounts() -> Iterator[ModuleType]:
    """A fresh ``accounts`` module (tests/unit/conftest.py put its folder on sys.path)."""
    sys.modules.pop("accounts", None)
    yield importlib.import_module("accounts")
    sys.modules.pop("accounts", None)


def _event(accounts, version, type_, amount, balance):
    return accounts.AccountEvent(
        account_id="a",
        version=version,
        type=accounts.EventType(type_),
        amount=amount,
        balance=balance,
        occurred_at=f"2025-03-14T09:26:{version:02d}.000Z",
    )


def test_fold_applies_events_in_order(accounts):
    # GIVEN created, credited 500, withdrawn 120 WHEN folded THEN version 3, balance 380
    events = [
        _event(accounts, 1, "AccountCreated", 0, 0),
        _event(accounts, 2, "AccountCredited", 500, 500),
        _event(accounts, 3, "AccountWithdrawn", 120, 380),
    ]
    state = accounts.fold(None, events)
    assert (state.version, state.balance) == (3, 380)
    assert state.created_at == events[0].occurred_at and state.updated_at == events[2].occurred_at


@pytest.mark.parametrize(
    "versions", [[1, 3], [2], [1, 2, 2]], ids=["gap", "no creation", "repeated"]
)
def test_a_history_with_gaps_is_reported_not_folded_wrongly(accounts, versions):
    # GIVEN a history with a gap, no creation or a repeated version WHEN folded THEN error
    events = [
        _event(accounts, v, "AccountCreated" if v == 1 else "AccountCredited", 1, 1)
        for v in versions
    ]
    with pytest.raises(accounts.CorruptHistoryError):
        accounts.fold(None, events)


def test_fold_of_nothing_is_no_account(accounts):
    # GIVEN no events WHEN folded THEN there is no account
    assert accounts.fold(None, []) is None


def test_cursor_round_trip(accounts):
    # GIVEN a cursor made for version 42 WHEN decoded THEN 42; no cursor means the start
    assert accounts.decode_cursor(accounts.encode_cursor(42)) == 42
    assert accounts.decode_cursor(None) == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [({"SNAPSHOT_INTERVAL": "0"}, "> 0"), ({"MAX_APPEND_ATTEMPTS": "x"}, "integer")],
)
def test_settings_refuse_bad_environment(accounts, env, message):
    # GIVEN a zero or non-integer setting WHEN read THEN a clear error at cold start
    with pytest.raises(ValueError, match=message):
        accounts.AccountSettings.from_env(env)


def test_settings_defaults(accounts):
    # GIVEN no environment WHEN read THEN K = 10 and 8 attempts
    settings = accounts.AccountSettings.from_env({})
    assert (settings.snapshot_interval, settings.max_append_attempts) == (10, 8)


def test_event_items_round_trip_exactly(accounts):
    # GIVEN large amounts WHEN stored as DynamoDB numbers and parsed THEN exact ints
    event = _event(accounts, 7, "AccountCredited", 10**14, 10**15)
    assert accounts.AccountEvent.from_item(event.to_item()) == event


@pytest.mark.parametrize(
    "change",
    [
        {"amount": {"N": "10.5"}},
        {"version": {"N": "0"}},
        {"type": {"S": "Nope"}},
        {"kind": {"S": "x"}},
    ],
)
def test_malformed_event_items_are_refused(accounts, change):
    # GIVEN an event item with a fractional amount, version 0, unknown type or wrong kind
    # WHEN parsed THEN it is refused as a poison record
    item = {**_event(accounts, 2, "AccountCredited", 5, 5).to_item(), **change}
    with pytest.raises(accounts.InvalidStreamRecordError):
        accounts.AccountEvent.from_item(item)
