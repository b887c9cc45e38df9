"""account_api.handler against moto: optimistic locking, conflicts and interleaved withdrawals."""

from __future__ import annotations

from typing import Any

import boto3

from tests.support.aws_faults import first_reply_lost, transaction_conflict
from tests.support.events import assert_json_error

# --------------------------------------------------------------------------- optimistic locking


def _competing_append(bank: Any, account_id: str, command: str, amount: int) -> None:
    bank.service.execute_command(
        bank.competitor(),
        account_id,
        bank.models.CommandType(command),
        amount,
        settings=bank.api.SETTINGS,
        clock=bank.clock,
    )


def test_conflict_is_retried_after_reloading(bank, infra):
    # GIVEN a balance of 100, and another writer that credits 5 just before our first write
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    bank.before_write(
        lambda n: _competing_append(bank, account_id, "credit", 5) if n == 0 else None
    )
    bank.calls.clear()

    # WHEN we withdraw 30
    response = bank.withdraw(account_id, 30)

    # THEN our first append lost (version 3 was taken), we reloaded and appended version 4
    assert response.status == 200
    assert response.body["version"] == 4 and response.body["balance"] == 75
    assert bank.calls.operations.count("PutItem") == 2
    assert len(bank.sleep.calls) == 1 and 0 <= bank.sleep.calls[0] <= 0.2
    assert infra.versions(account_id) == [1, 2, 3, 4]
    assert bank.get(account_id).body["balance"] == 75


def test_an_append_meeting_a_transaction_in_flight_is_retried_after_reloading(bank, infra):
    # GIVEN a balance of 100, and a keyed command's transaction writing version 3 while
    # our unkeyed append is sent: DynamoDB refuses the put (TransactionConflictException),
    # then the transaction commits
    account_id = bank.open_id()
    bank.credit(account_id, 100)

    def conflict(n: int) -> None:
        if n == 0:
            _competing_append(bank, account_id, "credit", 5)
            raise transaction_conflict("PutItem")

    bank.before_write(conflict)

    # WHEN we withdraw 30
    response = bank.withdraw(account_id, 30)

    # THEN the conflict is a lost race, not a failure: reloaded, decided again on 105 and
    # appended as version 4 (before, a 503)
    assert response.status == 200
    assert response.body["version"] == 4 and response.body["balance"] == 75
    assert infra.versions(account_id) == [1, 2, 3, 4]


def test_an_append_whose_retry_meets_a_transaction_is_not_applied_twice(bank, infra):
    # GIVEN a balance of 100, and DynamoDB applying the withdrawal's append but losing
    # the reply; the SDK's retry of the same put then meets a transaction in flight on
    # that item (TransactionConflictException, which returns no item)
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    client = bank.api.store._client
    event = "before-parameter-build.dynamodb.PutItem"
    applied: list[dict] = []

    def apply_then_conflict(params: dict, **_: object) -> None:
        if not applied:
            applied.append(dict(params))
            client.meta.events.unregister(event, apply_then_conflict)
            client.put_item(**params)  # landed; its reply never reaches the caller
            raise transaction_conflict("PutItem")

    client.meta.events.register(event, apply_then_conflict)

    # WHEN 30 is withdrawn
    response = bank.withdraw(account_id, 30)

    # THEN the put is known as its own by reading its key back: one withdrawal at
    # version 3 (read as a lost race, the command was decided again and withdrew 30 a
    # second time, at version 4)
    assert applied
    assert response.status == 200
    assert response.body["version"] == 3 and response.body["balance"] == 70
    assert infra.versions(account_id) == [1, 2, 3]


def test_an_append_whose_reply_was_lost_is_not_applied_twice(bank, infra):
    # GIVEN a balance of 100, and DynamoDB applying the withdrawal's append but losing
    # the reply, so the SDK sends the same put again and it fails its condition
    account_id = bank.open_id()
    bank.credit(account_id, 100)

    # WHEN 30 is withdrawn
    with first_reply_lost(bank.api.store._client, "PutItem", lambda params: True) as lost:
        response = bank.withdraw(account_id, 30)

    # THEN the append is known as its own (its write token came back), not a conflict:
    # one withdrawal, answered once (read as a conflict, the command was decided again
    # and withdrew 30 a second time, at version 4)
    assert lost
    assert response.status == 200
    assert response.body["version"] == 3 and response.body["balance"] == 70
    assert infra.versions(account_id) == [1, 2, 3]
    assert bank.get(account_id).body["balance"] == 70


def test_an_open_whose_reply_was_lost_answers_201(bank, infra):
    # GIVEN DynamoDB applying an unkeyed open's creation event but losing the reply
    # WHEN an account is opened
    with first_reply_lost(bank.api.store._client, "PutItem", lambda params: True) as lost:
        response = bank.open()

    # THEN the put is known as its own: 201 with the one account (read as a random id
    # already taken, it failed with a 5xx)
    assert lost
    assert response.status == 201
    assert infra.versions(response.body["account_id"]) == [1]


def test_conflict_re_checks_the_rule_so_a_race_cannot_overdraw(bank, infra):
    # GIVEN a balance of 100, and another writer that withdraws 60 just before our write
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    bank.before_write(
        lambda n: _competing_append(bank, account_id, "withdraw", 60) if n == 0 else None
    )

    # WHEN we withdraw 60 (fine against the state we read first)
    response = bank.withdraw(account_id, 60)

    # THEN after the reload the rule refuses it: 409 insufficient_funds, balance 40
    assert_json_error(response, 409, "insufficient_funds")
    assert infra.versions(account_id) == [1, 2, 3]
    assert bank.get(account_id).body["balance"] == 40


def test_endless_conflicts_give_409_concurrent_update_never_500(bank, infra):
    # GIVEN another writer that credits 1 before every one of our writes
    account_id = bank.open_id()
    bank.before_write(lambda n: _competing_append(bank, account_id, "credit", 1))

    # WHEN we credit 10
    response = bank.credit(account_id, 10)

    # THEN after MAX_APPEND_ATTEMPTS lost races: 409 concurrent_update with Retry-After
    assert_json_error(response, 409, "concurrent_update")
    assert response.headers["retry-after"] == "1"
    attempts = int(bank.api.SETTINGS.max_append_attempts)
    # AND only the competitor's events exist: ours was never written
    assert infra.versions(account_id) == list(range(1, attempts + 2))
    assert {i["amount"]["N"] for i in infra.event_items(account_id)[1:]} == {"1"}
    # AND it backed off (jittered, capped) between attempts, never after the last one
    assert len(bank.sleep.calls) == attempts - 1
    assert all(0 <= delay <= bank.models.BACKOFF_CAP_SECONDS for delay in bank.sleep.calls)


def test_twenty_interleaved_withdrawals_of_10_from_100_succeed_exactly_10_times(bank, infra):
    # GIVEN a balance of 100 and 20 withdrawals of 10, each on its own client (its own
    # Lambda instance), interleaved as tightly as possible: every withdrawal, right before
    # its first write, lets the next one run to the end. All 20 read the same state;
    # the innermost commits first and every other one loses a race and reloads.
    account_id = bank.open_id()
    bank.credit(account_id, 100)
    outcomes: dict[int, str] = {}

    def withdraw(index: int) -> None:
        client = boto3.client("dynamodb", region_name="us-east-1")
        if index + 1 < 20:
            fired: list[bool] = []

            def next_one_runs_first(**_: Any) -> None:
                if not fired:
                    fired.append(True)
                    withdraw(index + 1)

            client.meta.events.register("before-call.dynamodb.PutItem", next_one_runs_first)
        try:
            result = bank.service.execute_command(
                bank.store.EventStore(client, bank.api.store._table_name),
                account_id,
                bank.models.CommandType.WITHDRAW,
                10,
                settings=bank.api.SETTINGS,
                clock=bank.clock,
                sleep=bank.sleep,
            )
            outcomes[index] = f"ok:{result.body['version']}"
        except bank.models.InsufficientFundsError:
            outcomes[index] = "insufficient_funds"

    # WHEN they run
    withdraw(0)

    # THEN exactly 10 succeed, the balance is 0, versions are contiguous, no conflict
    # was given up on (each lost one race) and none raised anything else
    assert sum(o.startswith("ok") for o in outcomes.values()) == 10
    assert sum(o == "insufficient_funds" for o in outcomes.values()) == 10
    assert bank.get(account_id).body["balance"] == 0
    assert infra.versions(account_id) == list(range(1, 13))
    assert len(bank.sleep.calls) == 19
