"""``_moto_sqs_groups``: a MessageGroupId SQS refuses is refused here too, on standard
queues (fair queues' tenant) and FIFO queues alike; one it accepts is stored as sent."""

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
