"""``_moto_dynamodb_limits``: DynamoDB requests over AWS's limits are refused here too.

Each test cites the AWS page it follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from in_process_moto import dynamodb_with_table, in_process_moto

from localstage import moto_patches

#: An attribute of 390,000 bytes: its item is under 400 KB; eleven are over 4 MB (4,194,304 B).
BIG = "x" * 390_000


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A DynamoDB client of moto in this process, with localstage's checks, and a table
    ``t`` keyed by ``pk``."""
    with in_process_moto(monkeypatch, moto_patches.install_dynamodb_validation):
        yield dynamodb_with_table()


def _put(n: int) -> dict[str, Any]:
    return {"Put": {"TableName": "t", "Item": {"pk": {"S": f"item-{n}"}, "data": {"S": BIG}}}}


def _count(dynamodb: Any) -> int:
    """Items in ``t`` (a scan reads 1 MB per page: every page counted)."""
    pages = dynamodb.get_paginator("scan").paginate(TableName="t", Select="COUNT")
    return sum(int(page["Count"]) for page in pages)


def test_a_transaction_over_4_mb_is_refused_and_writes_nothing(dynamodb: Any) -> None:
    """TransactWriteItems: "The aggregate size of the items in the transaction cannot
    exceed 4 MB."
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
    """
    # WHEN eleven puts of ~390 KB items (each under 400 KB, ~4.3 MB in all) are sent
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[_put(n) for n in range(11)])

    # THEN the whole request is refused as invalid, and nothing is written
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _count(dynamodb) == 0

    # AND ten of them (~3.9 MB) are written
    dynamodb.transact_write_items(TransactItems=[_put(n) for n in range(10)])
    assert _count(dynamodb) == 10


def test_the_stored_items_an_update_or_delete_addresses_count(dynamodb: Any) -> None:
    # GIVEN ten stored items of ~390 KB
    for n in range(10):
        dynamodb.put_item(TableName="t", Item=_put(n)["Put"]["Item"])

    # WHEN one transaction deletes five, updates five and puts one more such item
    actions: list[dict[str, Any]] = [
        {"Delete": {"TableName": "t", "Key": {"pk": {"S": f"item-{n}"}}}} for n in range(5)
    ]
    actions += [
        {
            "Update": {
                "TableName": "t",
                "Key": {"pk": {"S": f"item-{n}"}},
                "UpdateExpression": "SET seen = :yes",
                "ExpressionAttributeValues": {":yes": {"BOOL": True}},
            }
        }
        for n in range(5, 10)
    ]
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[*actions, _put(10)])

    # THEN it is refused (eleven ~390 KB items), and the ten items are unchanged
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _count(dynamodb) == 10
    item = dynamodb.get_item(TableName="t", Key={"pk": {"S": "item-9"}})["Item"]
    assert "seen" not in item


@pytest.mark.parametrize(
    "request_of",
    [
        lambda values: (
            "put_item",
            {
                "TableName": "t",
                "Item": {"pk": {"S": "a"}},
                "ConditionExpression": "attribute_not_exists(pk) OR pk <> :used",
                "ExpressionAttributeValues": values,
            },
        ),
        lambda values: (
            "delete_item",
            {
                "TableName": "t",
                "Key": {"pk": {"S": "a"}},
                "ConditionExpression": "attribute_not_exists(pk) OR pk <> :used",
                "ExpressionAttributeValues": values,
            },
        ),
        lambda values: (
            "query",
            {
                "TableName": "t",
                "KeyConditionExpression": "pk = :used",
                "ExpressionAttributeValues": values,
            },
        ),
        lambda values: (
            "scan",
            {
                "TableName": "t",
                "FilterExpression": "pk = :used",
                "ExpressionAttributeValues": values,
            },
        ),
        lambda values: (
            "transact_write_items",
            {
                "TransactItems": [
                    {
                        "Put": {
                            "TableName": "t",
                            "Item": {"pk": {"S": "a"}},
                            "ConditionExpression": "attribute_not_exists(pk) OR pk <> :used",
                            "ExpressionAttributeValues": values,
                        }
                    }
                ]
            },
        ),
    ],
    ids=["put-item", "delete-item", "query", "scan", "transaction"],
)
def test_a_value_no_expression_uses_is_refused(dynamodb: Any, request_of: Any) -> None:
    """DynamoDB: "Value provided in ExpressionAttributeValues unused in expressions";
    "If you define an expression attribute value, you must use it consistently
    throughout the entire expression"
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ExpressionAttributeValues.html).
    moto checks it for UpdateItem only."""
    used = {":used": {"S": "b"}}
    # WHEN the request also names a value its expressions never use
    operation, request = request_of({**used, ":spare": {"S": "c"}})
    with pytest.raises(ClientError) as refused:
        getattr(dynamodb, operation)(**request)

    # THEN it is refused, naming the value, and nothing is written
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].endswith("unused in expressions: keys: {:spare}")
    assert _count(dynamodb) == 0

    # AND the same request with only the values it uses is served
    operation, request = request_of(used)
    getattr(dynamodb, operation)(**request)
