"""moto's SQS sends/receives, DynamoDB transactions and stream reads, made fast, act as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from in_process_moto import in_process_moto, moto_then_patched

from localstage import (
    _moto_dynamodb_answers,
    _moto_dynamodb_expressions,
    _moto_streams,
    moto_patches,
)


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An SQS client on moto in this process, with localstage's SQS speed-up installed."""
    with in_process_moto(monkeypatch, moto_patches.install_sqs):
        yield boto3.client("sqs", region_name="us-east-1")


def test_the_sqs_speed_up_keeps_attributes_fifo_deduplication_and_receives(sqs: Any) -> None:
    # GIVEN a standard queue and a FIFO queue with content-based deduplication
    queue = sqs.create_queue(QueueName="standard")["QueueUrl"]
    fifo = sqs.create_queue(
        QueueName="q.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]

    # WHEN ten messages are sent and four received, and one FIFO body is sent twice
    sqs.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)]
    )
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=4)["Messages"]
    for _ in range(2):
        sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")

    # THEN counts, deduplication and receives are what moto's own code gives
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    fifo_attributes = sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["All"])["Attributes"]
    assert len(received) == 4
    assert attributes["ApproximateNumberOfMessages"] == "6"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "4"
    assert fifo_attributes["ApproximateNumberOfMessages"] == "1"
    assert fifo_attributes["ContentBasedDeduplication"] == "true"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A DynamoDB client on moto in this process, with localstage's speed-up installed."""
    with in_process_moto(monkeypatch, moto_patches.install_dynamodb):
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name, keys in (("jobs", ["job_id"]), ("results", ["job_id", "subtask"])):
            client.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": key, "KeyType": kind}
                    for key, kind in zip(keys, ("HASH", "RANGE"), strict=False)
                ],
                AttributeDefinitions=[
                    {"AttributeName": key, "AttributeType": "S" if key == "job_id" else "N"}
                    for key in keys
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
        client.put_item(TableName="jobs", Item={"job_id": {"S": "j"}, "remaining": {"N": "2"}})
        yield client


def _decrement(dynamodb: Any, subtask: int) -> None:
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": "results",
                    "Item": {"job_id": {"S": "j"}, "subtask": {"N": str(subtask)}},
                    "ConditionExpression": "attribute_not_exists(job_id)",
                }
            },
            {
                "Update": {
                    "TableName": "jobs",
                    "Key": {"job_id": {"S": "j"}},
                    "UpdateExpression": "ADD remaining :minus_one",
                    "ConditionExpression": "remaining > :zero",
                    "ExpressionAttributeValues": {":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
                }
            },
        ]
    )


def _stream_records(dynamodb: Any, table: str) -> int:
    # moto's own stream shard: what GetRecords would page through.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table].stream_shard
    assert shard is not None
    return len(shard.items)


def test_a_transaction_writes_every_item_or_none(dynamodb: Any) -> None:
    # GIVEN a job with remaining = 2
    # WHEN subtask 0 is counted, then counted again (a duplicate), then subtask 1
    _decrement(dynamodb, 0)
    job_records = _stream_records(dynamodb, "jobs")
    with pytest.raises(ClientError) as duplicate:
        _decrement(dynamodb, 0)
    after_duplicate = dynamodb.get_item(TableName="jobs", Key={"job_id": {"S": "j"}})["Item"]
    records_after_duplicate = _stream_records(dynamodb, "jobs")
    _decrement(dynamodb, 1)

    # THEN the duplicate was cancelled on its put and wrote nothing, stream included
    assert duplicate.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert after_duplicate["remaining"] == {"N": "1"}
    assert records_after_duplicate == job_records
    job = dynamodb.get_item(TableName="jobs", Key={"job_id": {"S": "j"}})["Item"]
    assert job["remaining"] == {"N": "0"}
    assert dynamodb.scan(TableName="results")["Count"] == 2


def test_a_transaction_failing_on_its_last_item_rolls_back_the_first(dynamodb: Any) -> None:
    # GIVEN a job whose counter is already 0
    dynamodb.put_item(TableName="jobs", Item={"job_id": {"S": "j"}, "remaining": {"N": "0"}})
    results_before = _stream_records(dynamodb, "results")

    # WHEN a new subtask's result is put and the counter's condition fails
    with pytest.raises(ClientError) as cancelled:
        _decrement(dynamodb, 7)

    # THEN the put of the first item was undone, with its stream record
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert dynamodb.scan(TableName="results")["Count"] == 0
    assert _stream_records(dynamodb, "results") == results_before


def test_stream_records_read_without_moto_s_serializer_are_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import mock_aws
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = Config(account_id_endpoint_mode="disabled")
    with mock_aws():
        # GIVEN a table with old and new images on its stream, and an insert, a
        # modify and a remove of an item holding every non-binary attribute type
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=config)
        streams = boto3.client("dynamodbstreams", region_name="us-east-1", config=config)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        item = {
            "pk": {"S": "k"},
            "n": {"N": "-1.5"},
            "flag": {"BOOL": True},
            "none": {"NULL": True},
            "tags": {"SS": ["a", "b"]},
            "scores": {"NS": ["1", "2"]},
            "nested": {"M": {"list": {"L": [{"S": "x"}, {"M": {"deep": {"N": "7"}}}]}}},
        }
        dynamodb.put_item(TableName="t", Item=item)
        dynamodb.update_item(
            TableName="t",
            Key={"pk": {"S": "k"}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        dynamodb.delete_item(TableName="t", Key={"pk": {"S": "k"}})
        arn = dynamodb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]

        def read() -> list[dict[str, Any]]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records: list[dict[str, Any]] = streams.get_records(ShardIterator=iterator)["Records"]
            return records

        # WHEN they are read through moto's serializer, then through localstage's dump
        by_moto = read()
        monkeypatch.setattr(DynamoDBStreamsHandler, "get_records", _moto_streams.get_records)
        by_localstage = read()

    # THEN the client parses the same records, creation times included
    assert [record["eventName"] for record in by_moto] == ["INSERT", "MODIFY", "REMOVE"]
    assert by_localstage == by_moto


#: An item holding every attribute type, binary ones included.
_EVERY_TYPE = {
    "n": {"N": "-1.5"},
    "flag": {"BOOL": False},
    "none": {"NULL": True},
    "blob": {"B": b"\x00\xffbytes"},
    "blobs": {"BS": [b"a", b"\x01"]},
    "tags": {"SS": ["a", "b"]},
    "scores": {"NS": ["1", "2"]},
    "empty": {"S": ""},
    "nested": {"M": {"list": {"L": [{"S": "x"}, {"M": {"deep": {"N": "7"}}}, {"L": []}]}}},
}


def _create_table(dynamodb: Any, *, index_on: str | None = None) -> None:
    """Table ``t``: key ``pk`` (S) and sort key ``sk`` (N), with an index ``by_<name>`` on
    the string attribute ``index_on`` if given."""
    attributes = [("pk", "S"), ("sk", "N")] + ([(index_on, "S")] if index_on else [])
    indexes = [
        {
            "IndexName": f"by_{index_on}",
            "KeySchema": [{"AttributeName": index_on, "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    dynamodb.create_table(
        TableName="t",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attributes],
        **({"GlobalSecondaryIndexes": indexes} if index_on else {}),
        BillingMode="PAY_PER_REQUEST",
    )


def _item_answers(dynamodb: Any) -> list[Any]:
    """One answer of each item action, in every shape the tests need: items, keys,
    counts, pages, consumed capacity, item collection metrics, cancellation reasons."""
    capacity: dict[str, Any] = {"ReturnConsumedCapacity": "INDEXES"}
    answers: list[Any] = []
    for sort in range(3):
        answers.append(
            dynamodb.put_item(
                TableName="t",
                Item={"pk": {"S": "k"}, "sk": {"N": str(sort)}, "g": {"S": "G"}, **_EVERY_TYPE},
                ReturnValues="ALL_OLD",
                ReturnItemCollectionMetrics="SIZE",
                **capacity,
            )
        )
    answers.append(
        dynamodb.put_item(
            TableName="t",
            Item={"pk": {"S": "k"}, "sk": {"N": "0"}, "g": {"S": "G"}, **_EVERY_TYPE},
            ReturnValues="ALL_OLD",
        )
    )
    key = {"pk": {"S": "k"}, "sk": {"N": "1"}}
    answers += [
        dynamodb.get_item(TableName="t", Key=key, **capacity),
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "missing"}, "sk": {"N": "1"}}),
        dynamodb.get_item(
            TableName="t",
            Key=key,
            ProjectionExpression="#b, #n",
            ExpressionAttributeNames={"#b": "blob", "#n": "nested"},
        ),
        dynamodb.update_item(
            TableName="t",
            Key=key,
            UpdateExpression="ADD n :one SET #b = :b",
            ExpressionAttributeNames={"#b": "blob"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":b": {"B": b"\x02"}},
            ReturnValues="ALL_NEW",
            **capacity,
        ),
        dynamodb.update_item(
            TableName="t",
            Key=key,
            UpdateExpression="SET flag = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
            ReturnValues="UPDATED_OLD",
        ),
        dynamodb.query(
            TableName="t",
            KeyConditionExpression="pk = :k",
            ExpressionAttributeValues={":k": {"S": "k"}},
            Limit=2,
            **capacity,
        ),
        dynamodb.query(
            TableName="t",
            IndexName="by_g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "G"}},
            Select="COUNT",
        ),
        dynamodb.scan(TableName="t", **capacity),
        dynamodb.scan(TableName="t", Limit=1),
        dynamodb.scan(
            TableName="t", FilterExpression="sk > :s", ExpressionAttributeValues={":s": {"N": "9"}}
        ),
        dynamodb.batch_get_item(
            RequestItems={"t": {"Keys": [key, {"pk": {"S": "missing"}, "sk": {"N": "0"}}]}},
            **capacity,
        ),
        dynamodb.transact_get_items(
            TransactItems=[{"Get": {"TableName": "t", "Key": key}}], **capacity
        ),
        dynamodb.batch_write_item(
            RequestItems={"t": [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": "0"}}}}]},
            ReturnItemCollectionMetrics="SIZE",
            **capacity,
        ),
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "w"}, "sk": {"N": "0"}}}}
            ],
            ReturnItemCollectionMetrics="SIZE",
            **capacity,
        ),
        dynamodb.delete_item(TableName="t", Key=key, ReturnValues="ALL_OLD", **capacity),
    ]
    for call in (
        # Errors keep moto's serializer: the same codes, messages and reasons.
        lambda: dynamodb.put_item(
            TableName="t",
            Item={"pk": {"S": "k"}, "sk": {"N": "0"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        lambda: dynamodb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "k"}, "sk": {"N": "0"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        ),
    ):
        with pytest.raises(ClientError) as error:
            call()
        answers.append(error.value.response)
    for answer in answers:
        answer.pop("ResponseMetadata")
    return answers


def test_item_answers_dumped_without_moto_s_serializer_are_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import mock_aws
    from moto.dynamodb.responses import DynamoResult

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = Config(account_id_endpoint_mode="disabled")
    by: dict[str, list[Any]] = {}
    serializer_runs: list[str] = []
    execute_result = DynamoResult.execute_result

    def counted(result: Any, context: Any) -> Any:
        serializer_runs.append(who)
        return execute_result(result, context)

    monkeypatch.setattr(DynamoResult, "execute_result", counted)
    for who in ("moto", "localstage"):
        if who == "localstage":
            (patch,) = _moto_dynamodb_answers.patches()
            monkeypatch.setattr(patch.owner, patch.name, patch.value)
        with mock_aws():
            # GIVEN a table with a sort key and an index, on moto's serializer, then on
            # localstage's dump
            dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=config)
            _create_table(dynamodb, index_on="g")
            # WHEN every item action answers, successes and failures
            by[who] = _item_answers(dynamodb)

    # THEN the client parses the same answers: items of every type, binary included,
    # pages, counts, consumed capacity, metrics and cancellation reasons
    assert by["moto"][4]["Item"]["blob"] == {"B": b"\x00\xffbytes"}
    assert "LastEvaluatedKey" in by["moto"][9] and "LastEvaluatedKey" not in by["moto"][11]
    assert by["localstage"] == by["moto"]
    # (moto's serializer ran for CreateTable alone)
    assert serializer_runs.count("localstage") == 1 < serializer_runs.count("moto")


def _expression_answers(dynamodb: Any) -> list[Any]:
    """Updates and conditional writes that reuse each expression text with other names
    and values, expressions moto refuses, and the table they leave."""
    answers: list[Any] = []

    def answer(action: Callable[..., Any], **request: Any) -> None:
        try:
            result = action(**request)
        except ClientError as error:
            result = error.response
        result.pop("ResponseMetadata")
        answers.append(result)

    update = "SET #count = if_not_exists(#count, :zero) + :step, #state = :state ADD seen :tag"
    condition = "attribute_not_exists(#count) OR (#count < :limit AND #state <> :stop)"
    for step, (field, limit) in enumerate([("a", 9), ("b", 1), ("a", 9), ("b", 1), ("a", 0)]):
        answer(
            dynamodb.update_item,
            TableName="t",
            Key={"pk": {"S": f"item-{step % 2}"}, "sk": {"N": "0"}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#count": field, "#state": f"{field}_state"},
            ExpressionAttributeValues={
                ":zero": {"N": "0"},
                ":step": {"N": str(step + 1)},
                ":state": {"S": f"s{step}"},
                ":tag": {"SS": [f"t{step}"]},
                ":limit": {"N": str(limit)},
                ":stop": {"S": "s2"},
            },
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    for _ in range(2):  # refused twice: a failure is not remembered as a parse
        for refused in ("SET a = :v REMOVE", "SET a = :missing"):
            answer(
                dynamodb.update_item,
                TableName="t",
                Key={"pk": {"S": "item-0"}, "sk": {"N": "0"}},
                UpdateExpression=refused,
                ExpressionAttributeValues={":v": {"N": "1"}},
            )
    answer(dynamodb.scan, TableName="t", ConsistentRead=True)
    return answers


def test_expressions_tokenized_once_give_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    def answers() -> list[Any]:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(dynamodb)
        return _expression_answers(dynamodb)

    # GIVEN a table, on moto's parsers, then with each expression text tokenized once
    # WHEN the same expression texts come again with other names and values
    by = moto_then_patched(monkeypatch, _moto_dynamodb_expressions.patches(), answers)

    # THEN every answer, refusal and the items left are what moto's own parsers give
    codes = [answer.get("Error", {}).get("Code") for answer in by["moto"]]
    assert codes[:5] == [None, None, None] + ["ConditionalCheckFailedException"] * 2
    assert codes[5:9] == ["ValidationException"] * 4
    assert by["localstage"] == by["moto"]
