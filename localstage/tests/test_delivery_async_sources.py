"""Delivery modes of the asynchronous sources: asynchronous invocations (with their
destinations), S3 notifications and Scheduler firings.

Each test runs on the stage of ``tiny_async.py`` booted in both modes: ``once`` delivers
each event once, ``duplicate`` twice (AWS's at-least-once, made certain), in any order
where AWS promises none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import tiny_async
from test_scheduler import _create
from tiny import booted

from localstage.delivery import (
    DELIVERY_VARIABLE,
    DUPLICATE,
    MAX_REDELIVERY_DELAY_SECONDS,
    ONCE,
    DeliveryPolicy,
)
from localstage.invoke import lambda_service
from localstage.stage import LocalStage
from localstage.target import LocalTarget


def test_the_mode_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DELIVERY_VARIABLE, "duplicate")
    assert DeliveryPolicy.resolve().copies == 2
    assert DeliveryPolicy.resolve(ONCE).copies == 1
    monkeypatch.delenv(DELIVERY_VARIABLE)
    assert DeliveryPolicy.resolve().mode == ONCE
    with pytest.raises(ValueError, match="delivery mode must be one of"):
        DeliveryPolicy.resolve("twice")


def test_only_the_duplicate_mode_delays_and_shuffles() -> None:
    once, duplicate = DeliveryPolicy(ONCE), DeliveryPolicy(DUPLICATE, seed=7)
    items = list(range(20))
    assert (once.redelivery_delays(), once.jitter(), once.unordered(items)) == (
        [],
        0.0,
        items,
    )
    [delay] = duplicate.redelivery_delays()
    assert 0 <= delay <= MAX_REDELIVERY_DELAY_SECONDS
    assert sorted(duplicate.unordered(items)) == items
    assert duplicate.unordered(items) != items


@pytest.fixture(scope="module", params=[ONCE, DUPLICATE])
def stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStage]:
    root = tmp_path_factory.mktemp(f"delivery-async-{request.param}")
    with booted(
        root, tiny_async.TEMPLATE, tiny_async.HANDLER, clock_speed=60, delivery=request.param
    ) as running:
        yield running


def _drain(stage: LocalStage, logical_id: str, count: int, settle: float = 1.0) -> list[Any]:
    """Wait for ``count`` messages in a queue, then ``settle`` s for any more; all bodies."""
    queue = stage.deployment.stacks["test-Tiny"].resources[logical_id].attributes["QueueUrl"]
    sqs = stage.cloud.client("sqs")
    bodies: list[Any] = []

    def receive() -> None:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    def enough() -> bool:
        receive()
        return len(bodies) >= count

    LocalTarget(stage).wait_for(f"{count} messages", enough, timeout=30, interval=0.1)
    settle_until = time.monotonic() + settle
    while time.monotonic() < settle_until:
        receive()
        time.sleep(0.1)
    return bodies


def test_an_async_event_and_its_destination_run_once_per_copy(stage: LocalStage) -> None:
    """Lambda may run an asynchronous event more than once ("Occasionally, your function
    may receive the same event multiple times, even if no error occurs":
    https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html,
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html); each run is an
    invocation of its own, so its on-success destination also gets a record per run."""
    # GIVEN a function with an on-success queue
    copies = stage.delivery.copies

    # WHEN it is invoked asynchronously once
    request_id = lambda_service(stage).invoke_async(stage.function("Succeeding"), {"n": 1})

    # THEN it ran once per copy, each with the same request id, each sending its record
    records = _drain(stage, "Successes", copies)
    assert len(records) == copies
    assert {record["requestContext"]["requestId"] for record in records} == {request_id}
    assert all(record["responsePayload"]["echo"] == {"n": 1} for record in records)


def test_each_s3_notification_is_delivered_once_per_copy_in_any_order(stage: LocalStage) -> None:
    """S3 notifications are at least once and unordered: "Amazon S3 event notifications
    are designed to be delivered at least once"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html);
    the order of one key's events is recovered from the record's ``sequencer``, not from
    arrival (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)."""
    # GIVEN a bucket notifying Recorder of ObjectCreated under in/ ending .txt
    target = LocalTarget(stage)
    bucket = target.output("test-Tiny", "BucketName")
    keys = [f"in/object-{index}.txt" for index in range(6)]

    # WHEN objects are written one after the other
    for key in keys:
        target.put_object(bucket, key, b"x")

    # THEN each object's event arrives once per copy
    events = _drain(stage, "Records", len(keys) * stage.delivery.copies)
    arrived = [event["Records"][0]["s3"]["object"]["key"] for event in events]
    assert sorted(arrived) == sorted(keys * stage.delivery.copies)
    if stage.delivery.duplicates:
        # AND the copies are not simply each event twice in a row, in write order
        assert arrived != [key for key in keys for _ in range(2)]


def test_a_schedule_invokes_its_target_once_per_copy(stage: LocalStage) -> None:
    """The Scheduler retries a target per its retry policy
    (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule.html) and
    invokes a Lambda target asynchronously, which Lambda may run more than once
    ("Occasionally, your function may receive the same event multiple times, even if no
    error occurs": https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html). No
    exactly-once promise for the Scheduler was found in its guide: its targets must be
    idempotent, and the mode invokes the target twice with the same execution id."""
    # GIVEN a one-time schedule a minute ahead (1 s at 60x), deleted after completion
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    arn = _create(stage, "twice", at=due, function="Recorder", delete=True)

    # WHEN it comes due
    events = _drain(stage, "Records", stage.delivery.copies, settle=1.5)

    # THEN the target ran once per copy, with the same execution
    assert len(events) == stage.delivery.copies
    assert {event["schedule"] for event in events} == {arn}
    assert len({event["execution"] for event in events}) == 1
