"""``contention="conflicts"``: DynamoDB cancels transactions with a TransactionConflict here too.

"DynamoDB cancels a TransactWriteItems request under the following circumstances: ...
There is an ongoing TransactWriteItems operation that conflicts with a concurrent
TransactWriteItems request. In this case the TransactWriteItems operation fails with a
TransactionCanceledException", its reason "Code: TransactionConflict", "Message:
Transaction is ongoing for the item".
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling

The moto process serves one request at a time, so this never happens by itself: in
``conflicts`` mode the first attempt of every third transaction is cancelled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfn_resources import table_resource
from in_process_moto import dynamodb_with_table, in_process_moto
from tiny import booted

from localstage import _moto_dynamodb_contention
from localstage.contention import CONTENTION_VARIABLE, ContentionPolicy
from localstage.stage import LocalStage

#: What AWS answers a transaction of two items whose first met a conflict.
CONFLICT_TYPE = "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
CONFLICT_MESSAGE = (
    "Transaction cancelled, please refer cancellation reasons for specific reasons "
    "[TransactionConflict, None]"
)
CONFLICT_REASONS = [
    {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
    {"Code": "None"},
]


def _transaction(table: str, n: int) -> list[dict[str, Any]]:
    """Two puts: ``a-<n>`` and ``b-<n>``."""
    return [{"Put": {"TableName": table, "Item": {"pk": {"S": f"{side}-{n}"}}}} for side in "ab"]


def _keys(dynamodb: Any, table: str) -> set[str]:
    return {item["pk"]["S"] for item in dynamodb.scan(TableName=table)["Items"]}


def _raw_answers(dynamodb: Any) -> list[tuple[int, dict[str, Any]]]:
    """Every TransactWriteItems answer ``dynamodb`` receives from now on: (status, body)."""
    answers: list[tuple[int, dict[str, Any]]] = []

    def keep(http_response: Any, **_: Any) -> None:
        answers.append((http_response.status_code, json.loads(http_response.content or b"{}")))

    dynamodb.meta.events.register("after-call.dynamodb.TransactWriteItems", keep)
    return answers


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto in this process with the contention patch (a schedule of its own, counting
    from zero) in ``conflicts`` mode, and a table ``t`` keyed by ``pk``."""
    monkeypatch.setenv(CONTENTION_VARIABLE, "conflicts")
    with in_process_moto(monkeypatch, lambda: None):
        for patch in _moto_dynamodb_contention.patches():
            monkeypatch.setattr(patch.owner, patch.name, patch.value)
        yield dynamodb_with_table()


def test_every_third_transaction_is_cancelled_once_with_a_transaction_conflict(
    dynamodb: Any,
) -> None:
    answers = _raw_answers(dynamodb)
    # GIVEN two transactions committed
    dynamodb.transact_write_items(TransactItems=_transaction("t", 1))
    dynamodb.transact_write_items(TransactItems=_transaction("t", 2))

    # WHEN a third is sent
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=_transaction("t", 3))

    # THEN it is cancelled as AWS cancels a contended one: 400, the first item's reason
    # TransactionConflict, the other's None, and nothing of it is written
    error = cancelled.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert error["Error"]["Message"] == CONFLICT_MESSAGE
    assert error["CancellationReasons"] == CONFLICT_REASONS
    assert answers[-1] == (
        400,
        {
            "__type": CONFLICT_TYPE,
            "CancellationReasons": CONFLICT_REASONS,
            "Message": CONFLICT_MESSAGE,
        },
    )
    assert _keys(dynamodb, "t") == {"a-1", "b-1", "a-2", "b-2"}

    # AND its retry commits, so do the next two, and the sixth is cancelled
    dynamodb.transact_write_items(TransactItems=_transaction("t", 3))
    dynamodb.transact_write_items(TransactItems=_transaction("t", 4))
    dynamodb.transact_write_items(TransactItems=_transaction("t", 5))
    with pytest.raises(ClientError) as sixth:
        dynamodb.transact_write_items(TransactItems=_transaction("t", 6))
    assert sixth.value.response["CancellationReasons"] == CONFLICT_REASONS
    assert _keys(dynamodb, "t") == {f"{side}-{n}" for side in "ab" for n in range(1, 6)}


def test_a_transaction_dynamodb_refuses_as_invalid_is_refused_not_cancelled(
    dynamodb: Any,
) -> None:
    """DynamoDB: "You can't target the same item with multiple operations within the same
    transaction."
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
    """
    # GIVEN two transactions committed
    dynamodb.transact_write_items(TransactItems=_transaction("t", 1))
    dynamodb.transact_write_items(TransactItems=_transaction("t", 2))

    # WHEN the third puts one item twice
    twice = [_transaction("t", 3)[0], _transaction("t", 3)[0]]
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=twice)

    # THEN it is refused as invalid, and the next transaction is the third cancelled
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=_transaction("t", 4))
    assert cancelled.value.response["CancellationReasons"] == CONFLICT_REASONS


def test_in_none_mode_no_transaction_is_cancelled(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the moto process's mode is none
    monkeypatch.setenv(CONTENTION_VARIABLE, "none")

    # WHEN six transactions are sent
    for n in range(6):
        dynamodb.transact_write_items(TransactItems=_transaction("t", n))

    # THEN every one committed
    assert len(_keys(dynamodb, "t")) == 12


def test_the_mode_is_the_stage_s_else_the_environment_s_else_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CONTENTION_VARIABLE, raising=False)
    assert ContentionPolicy.resolve().mode == "none"
    monkeypatch.setenv(CONTENTION_VARIABLE, "Conflicts")
    assert ContentionPolicy.resolve().conflicts
    assert ContentionPolicy.resolve("none").mode == "none"
    with pytest.raises(ValueError, match="contention mode"):
        ContentionPolicy.resolve("sometimes")


# ---------------------------------------------------------------- through a stage

TABLE_ONLY = {"Resources": {"Table": table_resource()}}


def _stage_transactions(stage: LocalStage, count: int) -> list[str]:
    """``count`` transactions on the stage's table: each one's error code, or ``ok``."""
    dynamodb = stage.cloud.client("dynamodb")
    (table,) = dynamodb.list_tables()["TableNames"]
    outcomes = []
    for n in range(count):
        try:
            dynamodb.transact_write_items(TransactItems=_transaction(table, n))
            outcomes.append("ok")
        except ClientError as exc:
            reasons = [reason["Code"] for reason in exc.response.get("CancellationReasons", [])]
            outcomes.append(f"{exc.response['Error']['Code']} {reasons}")
    return outcomes


def test_a_stage_in_conflicts_mode_hands_it_to_its_moto_process(tmp_path: Path) -> None:
    # GIVEN a stage booted with contention="conflicts" (the moto process a fork of its own)
    with booted(tmp_path, TABLE_ONLY, "", contention="conflicts") as stage:
        # WHEN four transactions are sent, the fourth the third's retry
        outcomes = _stage_transactions(stage, 3)
        dynamodb = stage.cloud.client("dynamodb")
        (table,) = dynamodb.list_tables()["TableNames"]
        dynamodb.transact_write_items(TransactItems=_transaction(table, 2))
        described = stage.describe()

    # THEN the third was cancelled for a conflict on its first item, and its retry committed
    cancelled = "TransactionCanceledException ['TransactionConflict', 'None']"
    assert outcomes == ["ok", "ok", cancelled]
    assert "contention: conflicts" in described


def test_a_stage_in_none_mode_cancels_no_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stage booted without a contention mode, none in the environment
    monkeypatch.delenv(CONTENTION_VARIABLE, raising=False)
    with booted(tmp_path, TABLE_ONLY, "") as stage:
        # WHEN six transactions are sent
        outcomes = _stage_transactions(stage, 6)

    # THEN every one committed
    assert outcomes == ["ok"] * 6
