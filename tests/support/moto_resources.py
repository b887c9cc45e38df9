"""Tables and queues on moto with the keys and wiring the stacks deploy, made one way.

The unit conftests of every pattern, the handler_kit tests and the bench all create
moto tables and queues; the key schema, billing mode, stream and redrive spellings are
written here once, and so is the reading of a table's stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.support.events import dynamodb_stream_record_from_get_records

#: A key attribute: its name and DynamoDB type.
Key = tuple[str, Literal["S", "N", "B"]]


def create_table(
    dynamodb: Any, name: str, hash_key: Key, range_key: Key | None = None, *, stream: bool = False
) -> dict[str, Any]:
    """An on-demand table keyed by ``hash_key`` (and ``range_key``); the create answer.

    ``stream`` turns on a NEW_IMAGE stream, as the stacks configure theirs.
    """
    keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    options: dict[str, Any] = {}
    if stream:
        options["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    created: dict[str, Any] = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key[0], "KeyType": kind} for key, kind in keys],
        AttributeDefinitions=[
            {"AttributeName": key[0], "AttributeType": key[1]} for key, _ in keys
        ],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )
    return created


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The ARN of a queue, from its URL."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def create_queue(
    sqs: Any, name: str, *, dead_letter_arn: str | None = None, max_receive_count: int = 3
) -> str:
    """A standard queue's URL; with ``dead_letter_arn``, redriven there after
    ``max_receive_count`` receives."""
    attributes: dict[str, str] = {}
    if dead_letter_arn is not None:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(max_receive_count)}
        )
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


@dataclass
class StreamReader:
    """A table's DynamoDB stream on moto, read as Lambda's stream mapping delivers it.

    Each read starts every shard at TRIM_HORIZON and skips the records already
    returned: moto's ``NextShardIterator`` stops returning records after a while, so
    iterators are not kept from one read to the next.
    """

    streams: Any
    stream_arn: str
    seen: set[str] = field(default_factory=set)

    def new_records(self) -> list[dict[str, Any]]:
        """The records added since the last call, oldest first per shard, in the Lambda
        event shape."""
        records: list[dict[str, Any]] = []
        description = self.streams.describe_stream(StreamArn=self.stream_arn)
        for shard in description["StreamDescription"]["Shards"]:
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
            response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            for raw in response["Records"]:
                sequence = raw["dynamodb"]["SequenceNumber"]
                if sequence not in self.seen:
                    self.seen.add(sequence)
                    records.append(
                        dynamodb_stream_record_from_get_records(raw, stream_arn=self.stream_arn)
                    )
        return records
