"""Delivery modes of DynamoDB stream mappings, EventBridge rules and SQS mappings.

Each test runs on the stage of ``test_stream_and_bus_delivery.py`` (plus an SQS queue
and its consumer) booted in both modes: ``once`` delivers each event once, ``duplicate``
twice, out of order only where AWS promises no order. The consumers count how often
they processed each key in the ``Processed`` table.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import test_stream_and_bus_delivery as streams
from cfn_resources import allow, arn, event_source_mapping, queue_resource
from tiny import booted

from localstage.delivery import DUPLICATE, ONCE
from localstage.stage import LocalStage
from localstage.target import LocalTarget

HANDLER = (
    streams.HANDLER
    + """

def queued(event, context):
    for record in event["Records"]:
        count("sqs-" + record["body"])
    return {"batchItemFailures": []}
"""
)


def _template() -> dict[str, Any]:
    """The streams-and-bus stage plus a standard queue consumed by ``QueueConsumer``."""
    template = copy.deepcopy(streams.TEMPLATE)
    resources = template["Resources"]
    resources["Work"] = queue_resource(VisibilityTimeout=60)
    resources["RolePolicy"]["Properties"]["PolicyDocument"]["Statement"].append(
        allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], arn("Work"))
    )
    resources["QueueConsumer"] = streams._function("app.queued")
    resources["QueueMapping"] = event_source_mapping(
        "QueueConsumer",
        arn("Work"),
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    template["Outputs"]["WorkUrl"] = {"Value": {"Ref": "Work"}}
    return template


@pytest.fixture(scope="module", params=[ONCE, DUPLICATE])
def stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStage]:
    root = tmp_path_factory.mktemp(f"delivery-polled-{request.param}")
    with booted(root, _template(), HANDLER, clock_speed=30, delivery=request.param) as running:
        yield running


def _settled_counts(stage: LocalStage, keys: list[str], expected: int) -> dict[str, int]:
    """Each key's processing count once every key reached ``expected`` (plus a second
    for any further delivery to show up)."""
    streams._wait(
        f"{len(keys)} keys processed {expected} times",
        lambda: all(streams._processed(stage, key) >= expected for key in keys),
    )
    time.sleep(1.0)
    return {key: streams._processed(stage, key) for key in keys}


def test_a_stream_batch_is_delivered_again_and_a_shard_stays_in_order(stage: LocalStage) -> None:
    """ "Lambda event source mappings process each event at least once, and duplicate
    processing of records can occur"
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html),
    e.g. a batch run again; but "for each item that is modified in a DynamoDB table, the
    stream records appear in the same sequence as the actual modifications to the item"
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html) and
    Lambda reads a shard in order, so a duplicate never reorders a shard."""
    copies = stage.delivery.copies
    dynamodb = stage.cloud.client("dynamodb")
    keys = [f"seq-{index:02d}" for index in range(15)]

    # WHEN 15 items are written one by one (batches hold at most 10)
    for key in keys:
        dynamodb.put_item(TableName=streams._out(stage, "LedgerName"), Item={"pk": {"S": key}})

    # THEN each record was processed once per copy
    assert _settled_counts(stage, keys, copies) == dict.fromkeys(keys, copies)
    item = dynamodb.get_item(
        TableName=streams._out(stage, "ProcessedName"), Key={"pk": {"S": "arrival-order"}}
    )["Item"]
    arrival = [value["S"] for value in item["keys_seen"]["L"]]
    # AND they first arrived in write order
    assert list(dict.fromkeys(arrival)) == keys
    # AND every step is the next record or a restart at a record already delivered (a
    # batch run again), never a record of the shard ahead of its turn
    seen: set[str] = set()
    for previous, current in itertools.pairwise(arrival):
        seen.add(previous)
        follows = keys.index(current) == keys.index(previous) + 1
        assert follows or current in seen, f"{current} came out of order after {previous}"


def test_each_rule_target_gets_every_event_once_per_copy_in_any_order(stage: LocalStage) -> None:
    """EventBridge retries a target delivery it does not see succeed
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html),
    so a target can get an event twice; rules and targets promise no order (order and
    deduplication exist only for the new Custom Event Bus's FIFO subscribers and
    publish-time deduplication; "an unordered subscriber delivers events in parallel":
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html)."""
    copies = stage.delivery.copies
    amounts = list(range(11, 17))

    # WHEN six matching events are put in one request, and one for a Lambda target
    response = stage.cloud.client("events").put_events(
        Entries=[
            {
                "EventBusName": "tiny-bus",
                "Source": "tiny",
                "DetailType": "big",
                "Detail": json.dumps({"amount": amount}),
            }
            for amount in amounts
        ]
        + [
            {
                "EventBusName": "tiny-bus",
                "Source": "tiny",
                "DetailType": "invoke-me",
                "Detail": json.dumps({"id": "twice"}),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0

    # THEN the queue target got each event once per copy
    received: list[int] = []

    def enough() -> bool:
        received.extend(
            json.loads(message["Body"])["detail"]["amount"]
            for message in streams._messages(stage, "RuleQueueUrl")
        )
        return len(received) >= len(amounts) * copies

    LocalTarget(stage).wait_for("the rule queue's events", enough, timeout=20, interval=0.1)
    time.sleep(1.0)
    enough()
    assert sorted(received) == sorted(amounts * copies)
    if stage.delivery.duplicates:
        # AND not in the order they were put, each pass after the other
        assert received != amounts + amounts
    # AND the Lambda target ran once per copy
    assert _settled_counts(stage, ["bus-twice"], copies) == {"bus-twice": copies}
    # (the transformed target got its copies too; drained for the other tests)
    streams._wait(
        "the transformed events",
        lambda: len(streams._messages(stage, "TransformedQueueUrl")) or None,
    )


def test_every_sqs_message_is_delivered_once_per_copy(stage: LocalStage) -> None:
    """A standard queue delivers at least once, in best-effort order: "more than one copy
    of a message might be delivered out of order"
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html,
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues-at-least-once-delivery.html)."""
    copies = stage.delivery.copies
    target = LocalTarget(stage)
    queue = streams._out(stage, "WorkUrl")
    bodies = [f"message-{index}" for index in range(12)]

    # WHEN twelve messages are sent
    for body in bodies:
        target.send_message(queue, body)

    # THEN each was processed once per copy, and the queue is empty afterwards
    keys = [f"sqs-{body}" for body in bodies]
    assert _settled_counts(stage, keys, copies) == dict.fromkeys(keys, copies)
    target.wait_for("the queue to drain", lambda: target.queue_depth(queue) == 0, timeout=10)
