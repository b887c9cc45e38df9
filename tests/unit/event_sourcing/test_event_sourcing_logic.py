"""account_models.py and account_parsing.py without Lambda: the fold, settings and cursors."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

#: The modules the fixtures import (``account_parsing`` imports ``account_models``).
_MODULES = ("account_models", "account_parsing")


def _fresh(name: str) -> Iterator[ModuleType]:
    """A fresh module of the pattern (tests/unit/conftest.py put its folder on sys.path)."""
    for module in _MODULES:
        sys.modules.pop(module, None)
    yield importlib.import_module(name)
    for module in _MODULES:
        sys.modules.pop(module, None)


@pytest.fixture
def models() -> Iterator[ModuleType]:
    """A fresh ``account_models`` module."""
    yield from _fresh("account_models")


@pytest.fixture
def parsing() -> Iterator[ModuleType]:
    """A fresh ``account_parsing`` module."""
    yield from _fresh("account_parsing")


def _event(models, version, type_, amount, balance):
    return models.AccountEvent(
        account_id="a",
        version=version,
        type=models.EventType(type_),
        amount=amount,
        balance=balance,
        occurred_at=f"2025-03-14T09:26:{version:02d}.000Z",
    )


def test_fold_applies_events_in_order(models):
    # GIVEN created, credited 500, withdrawn 120 WHEN folded THEN version 3, balance 380
    events = [
        _event(models, 1, "AccountCreated", 0, 0),
        _event(models, 2, "AccountCredited", 500, 500),
        _event(models, 3, "AccountWithdrawn", 120, 380),
    ]
    state = models.fold(None, events)
    assert (state.version, state.balance) == (3, 380)
    assert state.created_at == events[0].occurred_at and state.updated_at == events[2].occurred_at


@pytest.mark.parametrize(
    "versions", [[1, 3], [2], [1, 2, 2]], ids=["gap", "no creation", "repeated"]
)
def test_a_history_with_gaps_is_reported_not_folded_wrongly(models, versions):
    # GIVEN a history with a gap, no creation or a repeated version WHEN folded THEN error
    events = [
        _event(models, v, "AccountCreated" if v == 1 else "AccountCredited", 1, 1) for v in versions
    ]
    with pytest.raises(models.CorruptHistoryError):
        models.fold(None, events)


def test_fold_of_nothing_is_no_account(models):
    # GIVEN no events WHEN folded THEN there is no account
    assert models.fold(None, []) is None


def test_cursor_round_trip(parsing):
    # GIVEN a cursor made for version 42 WHEN decoded THEN 42; no cursor means the start
    account = "6f1c2a9e-0b1d-4c3e-9a8f-2d3e4f5a6b7c"
    assert parsing.decode_cursor(parsing.encode_cursor(account, 42), account) == 42
    assert parsing.decode_cursor(None, account) == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [({"SNAPSHOT_INTERVAL": "0"}, "> 0"), ({"MAX_APPEND_ATTEMPTS": "x"}, "integer")],
)
def test_settings_refuse_bad_environment(models, env, message):
    # GIVEN a zero or non-integer setting WHEN read THEN a clear error at cold start
    with pytest.raises(ValueError, match=message):
        models.AccountSettings.from_env(env)


def test_settings_defaults(models):
    # GIVEN no environment WHEN read THEN K = 10 and 8 attempts
    settings = models.AccountSettings.from_env({})
    assert (settings.snapshot_interval, settings.max_append_attempts) == (10, 8)


def test_event_items_round_trip_exactly(models):
    # GIVEN large amounts WHEN stored as DynamoDB numbers and parsed THEN exact ints
    event = _event(models, 7, "AccountCredited", 10**14, 10**15)
    assert models.AccountEvent.from_item(event.to_item()) == event


@pytest.mark.parametrize(
    "change",
    [
        {"amount": {"N": "10.5"}},
        {"version": {"N": "0"}},
        {"type": {"S": "Nope"}},
        {"kind": {"S": "x"}},
    ],
)
def test_malformed_event_items_are_refused(models, change):
    # GIVEN an event item with a fractional amount, version 0, unknown type or wrong kind
    # WHEN parsed THEN it is refused as a poison record
    item = {**_event(models, 2, "AccountCredited", 5, 5).to_item(), **change}
    with pytest.raises(models.InvalidStreamRecordError):
        models.AccountEvent.from_item(item)
