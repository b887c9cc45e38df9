"""Idempotency records past their TTL read as absent, although DynamoDB still has them.

DynamoDB deletes expired items typically within two days and reads return them until
then (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
moto never deletes them, so a record past its ``expires_at`` on the fake clock is what
AWS shows within that delay. Events and snapshots carry no TTL.
"""

from __future__ import annotations

from typing import Any

import pytest


def _record_expiry(infra: Any) -> int:
    (record,) = [i for i in infra.raw_items() if i["kind"]["S"] == "idempotency"]
    return int(record["expires_at"]["N"])


@pytest.mark.parametrize("amount", [700, 50], ids=["same-command", "other-command"])
def test_a_key_whose_record_expired_runs_the_command_anew(bank, infra, clock, amount):
    # GIVEN a credit of 700 made with an Idempotency-Key, and its record now at its
    # expires_at, still in the table
    account_id = bank.open_id()
    first = bank.credit(account_id, 700, headers={"Idempotency-Key": "pay-ttl"})
    assert first.status == 200
    clock.advance_to(_record_expiry(infra))

    # WHEN the client sends a command with the same key (the same one, or another)
    again = bank.credit(account_id, amount, headers={"Idempotency-Key": "pay-ttl"})

    # THEN it runs as a new command: not the first outcome replayed (same command), nor
    # 422 for a reused key (other command); its event is appended
    assert again.status == 200, again.body
    assert "idempotent-replayed" not in again.headers
    assert again.body["balance"] == 700 + amount
    assert infra.versions(account_id) == [1, 2, 3]
    # AND the expired record was replaced in the same transaction: a retry of this
    # command now replays it
    retry = bank.credit(account_id, amount, headers={"Idempotency-Key": "pay-ttl"})
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.body == again.body
    assert bank.get(account_id).body["balance"] == 700 + amount
