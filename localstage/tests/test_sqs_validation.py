"""``_moto_sqs_groups``: a MessageGroupId SQS refuses is refused here too, on standard
queues (fair queues' tenant) and FIFO queues alike; one it accepts is stored as sent.
``_moto_sqs_sizes``: a message's attributes count towards SQS's size limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from in_process_moto import in_process_moto

from localstage import moto_patches

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An SQS client of moto in this process, with localstage's checks installed."""
    with in_process_moto(monkeypatch, moto_patches.install_sqs_validation):
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.mark.parametrize("group_id", ["a" * 128, "tenant-42", PUNCTUATION, "0f" * 16])
def test_a_group_id_sqs_accepts_tags_a_standard_queues_message(sqs: Any, group_id: str) -> None:
    # GIVEN a standard queue WHEN a message is sent with a valid group id
    queue = sqs.create_queue(QueueName="standard")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="m", MessageGroupId=group_id)

    # THEN it is received with that group id
    message = sqs.receive_message(QueueUrl=queue, AttributeNames=["MessageGroupId"])["Messages"][0]
    assert message["Attributes"]["MessageGroupId"] == group_id


@pytest.mark.parametrize(
    "group_id",
    [
        "a" * 129,
        "",
        "has space",
        "tenant\u00e9",
        "tab\there",
        "arn:aws:sts::1:assumed-role/" + "r" * 120,
    ],
    ids=["129-chars", "empty", "space", "non-ascii", "tab", "long-arn"],
)
@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_a_group_id_sqs_refuses_is_refused_and_nothing_is_queued(
    sqs: Any, group_id: str, fifo: bool
) -> None:
    # GIVEN a queue
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    queue = sqs.create_queue(QueueName="q.fifo" if fifo else "q", Attributes=attributes)["QueueUrl"]

    # WHEN a message, or a batch, is sent with a group id outside SQS's rule
    with pytest.raises(ClientError) as single:
        sqs.send_message(QueueUrl=queue, MessageBody="m", MessageGroupId=group_id)
    with pytest.raises(ClientError) as batch:
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": "1", "MessageBody": "m", "MessageGroupId": group_id}],
        )

    # THEN both are refused as invalid and the queue stays empty
    for refused in (single, batch):
        assert refused.value.response["Error"]["Code"] in {
            "InvalidParameterValue",
            "MissingParameter",
        }
    depth = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"


# ``_moto_sqs_sizes``: "All parts of the message attribute, including Name, Type, and
# Value, are part of the message size restriction (1 MiB or 1,048,576 bytes)."
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html
MIB = 1_048_576


def _depth(sqs: Any, queue: str) -> str:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return str(attributes["Attributes"]["ApproximateNumberOfMessages"])


@pytest.mark.parametrize(
    "attribute",
    [
        {"DataType": "String", "StringValue": "v" * 10},
        {"DataType": "Binary", "BinaryValue": b"\x00" * 10},
    ],
    ids=["string", "binary"],
)
def test_a_message_whose_attributes_take_it_past_1_mib_is_refused(
    sqs: Any, attribute: dict[str, Any]
) -> None:
    # GIVEN a queue with the default (and largest) MaximumMessageSize, 1 MiB
    queue = sqs.create_queue(QueueName="sized")["QueueUrl"]
    # AND a body that fits alone, but not with one attribute's name, type and value
    body = "b" * (MIB - 5)

    # WHEN it is sent with the attribute
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=queue, MessageBody=body, MessageAttributes={"a": attribute})

    # THEN SQS's refusal of an oversized message, and nothing is queued
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Message must be shorter than 1048576 bytes" in str(refused.value)
    assert _depth(sqs, queue) == "0"
    # AND the same body without the attribute is taken
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert _depth(sqs, queue) == "1"


def test_a_message_at_exactly_the_limit_with_its_attributes_is_taken(sqs: Any) -> None:
    # GIVEN a body plus name ("a"), type ("String") and value ("v") of 1,048,576 bytes
    queue = sqs.create_queue(QueueName="exact")["QueueUrl"]
    body = "b" * (MIB - len("a") - len("String") - len("v"))

    # WHEN it is sent THEN it is queued
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=body,
        MessageAttributes={"a": {"DataType": "String", "StringValue": "v"}},
    )
    assert _depth(sqs, queue) == "1"


def test_a_batch_whose_attributes_take_it_past_1_mib_is_refused_whole(sqs: Any) -> None:
    """SendMessageBatch: "The maximum allowed individual message size and the maximum
    total payload size (the sum of the individual lengths of all of the batched
    messages) are both 1 MiB 1,048,576 bytes."
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
    """
    # GIVEN two entries whose bodies fit in 1 MiB together, but not with the attributes
    queue = sqs.create_queue(QueueName="batched")["QueueUrl"]
    half = "b" * (MIB // 2 - 4)
    attributes = {"tenant": {"DataType": "String", "StringValue": "acme"}}
    entries = [
        {"Id": str(n), "MessageBody": half, "MessageAttributes": attributes} for n in range(2)
    ]

    # WHEN the batch is sent
    with pytest.raises(ClientError) as refused:
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)

    # THEN it is refused as too long, and nothing is queued
    assert refused.value.response["Error"]["Code"] in {
        "BatchRequestTooLong",
        "AWS.SimpleQueueService.BatchRequestTooLong",
    }
    assert _depth(sqs, queue) == "0"
    # AND the same entries without attributes are taken
    sqs.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": e["Id"], "MessageBody": half} for e in entries]
    )
    assert _depth(sqs, queue) == "2"


def test_an_attribute_counts_against_a_smaller_maximum_message_size(sqs: Any) -> None:
    # GIVEN a queue whose MaximumMessageSize is 1,024 bytes
    queue = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "1024"})[
        "QueueUrl"
    ]
    entry = {
        "Id": "1",
        "MessageBody": "b" * 1000,
        "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "1" * 30}},
    }

    # WHEN a 1,000-byte body with a 37-byte attribute is sent in a batch
    with pytest.raises(ClientError) as refused:
        sqs.send_message_batch(QueueUrl=queue, Entries=[entry])

    # THEN it is refused over the queue's maximum, and nothing is queued
    assert "Message must be shorter than 1024 bytes" in str(refused.value)
    assert _depth(sqs, queue) == "0"
