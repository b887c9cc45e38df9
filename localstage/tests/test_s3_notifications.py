"""S3 event notifications: event types, prefix and suffix filters, the S3 event shape."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from localstage.sources.s3_notifications import NotificationRule, event_type_matches, key_filter
from localstage.stage import LocalStage
from localstage.target import LocalTarget


@pytest.mark.parametrize(
    ("pattern", "event_name", "expected"),
    [
        ("s3:ObjectCreated:*", "ObjectCreated:Put", True),
        ("s3:ObjectCreated:*", "ObjectCreated:CompleteMultipartUpload", True),
        ("s3:ObjectCreated:Put", "ObjectCreated:Put", True),
        ("s3:ObjectCreated:Put", "ObjectCreated:Copy", False),
        ("s3:ObjectCreated:*", "ObjectRemoved:Delete", False),
        ("s3:ObjectRemoved:*", "ObjectRemoved:DeleteMarkerCreated", True),
    ],
)
def test_event_types_match_exactly_or_by_wildcard(
    pattern: str, event_name: str, expected: bool
) -> None:
    assert event_type_matches(pattern, event_name) is expected


def test_prefix_and_suffix_filters_both_apply() -> None:
    # GIVEN CDK's filter spelling
    prefix, suffix = key_filter(
        {
            "Key": {
                "FilterRules": [
                    {"Name": "suffix", "Value": ".txt"},
                    {"Name": "prefix", "Value": "in/"},
                ]
            }
        }
    )
    rule = NotificationRule(
        bucket="b",
        function=None,  # type: ignore[arg-type]
        events=("s3:ObjectCreated:*",),
        prefix=prefix,
        suffix=suffix,
    )

    # THEN only keys with both match, in that bucket only
    assert rule.matches("b", "ObjectCreated:Put", "in/a.txt")
    assert not rule.matches("b", "ObjectCreated:Put", "in/a.csv")
    assert not rule.matches("b", "ObjectCreated:Put", "out/a.txt")
    assert not rule.matches("other", "ObjectCreated:Put", "in/a.txt")


def _records(stage: LocalStage, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    queue = LocalTarget(stage).output("test-Tiny", "RecordQueueUrl")
    sqs = stage.cloud.client("sqs")
    events: list[dict[str, Any]] = []

    def enough() -> bool:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return len(events) >= count

    LocalTarget(stage).wait_for(f"{count} S3 events", enough, timeout=timeout, interval=0.1)
    return events


def test_matching_objects_notify_the_function_with_a_valid_s3_event(
    async_stage: LocalStage,
) -> None:
    # GIVEN a bucket notifying Recorder of ObjectCreated:* under in/ ending .txt,
    # and of ObjectRemoved:Delete anywhere
    target = LocalTarget(async_stage)
    bucket = target.output("test-Tiny", "BucketName")
    s3 = async_stage.cloud.client("s3")

    # WHEN objects are written: two that match (put, copy), two that do not, then a delete
    target.put_object(bucket, "in/first file.txt", b"hello")
    target.put_object(bucket, "in/skipped.csv", b"no")
    target.put_object(bucket, "out/skipped.txt", b"no")
    s3.copy_object(
        Bucket=bucket, Key="in/copy.txt", CopySource={"Bucket": bucket, "Key": "in/first file.txt"}
    )
    s3.delete_object(Bucket=bucket, Key="out/skipped.txt")

    # THEN exactly three events arrive, each a valid one-record S3 event
    events = _records(async_stage, 3)
    time.sleep(0.5)
    events += _records(async_stage, 0, timeout=1)
    parsed = [S3Model.model_validate(event) for event in events]
    by_name = {
        (record.eventName, _object(record).key): record
        for event in parsed
        for record in event.Records
    }
    assert set(by_name) == {
        ("ObjectCreated:Put", "in/first+file.txt"),
        ("ObjectCreated:Copy", "in/copy.txt"),
        ("ObjectRemoved:Delete", "out/skipped.txt"),
    }
    put = by_name[("ObjectCreated:Put", "in/first+file.txt")]
    assert put.s3.bucket.name == bucket
    assert _object(put).size == 5
    assert _object(put).eTag == s3.head_object(Bucket=bucket, Key="in/first file.txt")[
        "ETag"
    ].strip('"')
    assert by_name[("ObjectRemoved:Delete", "out/skipped.txt")].s3.configurationId == "removals"


def _object(record: Any) -> Any:
    assert record.s3.object is not None
    return record.s3.object
