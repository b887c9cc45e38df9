"""Rules of the DynamoDB stream and EventBridge sources that need no running cloud."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from localstage.runtime import InvocationResult
from localstage.sources.dynamodb_streams import (
    drop_moto_duplicate_inserts,
    first_failed_index,
    stream_failure_record,
)
from localstage.sources.event_patterns import InvalidEventPatternError, matches, parse
from localstage.sources.eventbridge import json_path, target_input

EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "AccountCredited",
    "source": "serverless-patterns.accounts",
    "account": "123456789012",
    "time": "2026-01-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:dynamodb:us-east-1:123456789012:table/t"],
    "detail": {
        "account_id": "a-1",
        "amount": 250,
        "tags": ["vip", "eu"],
        "ip": "10.0.3.7",
        "note": None,
        "nested": {"flag": True},
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"detail-type": ["AccountCredited"]}, True),
        ({"detail-type": ["AccountWithdrawn"]}, False),
        ({"source": [{"prefix": "serverless-"}]}, True),
        ({"source": [{"suffix": ".ACCOUNTS"}]}, False),
        ({"source": [{"suffix": {"equals-ignore-case": ".ACCOUNTS"}}]}, True),
        ({"detail-type": [{"equals-ignore-case": "accountcredited"}]}, True),
        ({"detail-type": [{"wildcard": "Account*ed"}]}, True),
        ({"detail-type": [{"anything-but": ["AccountCredited"]}]}, False),
        ({"detail-type": [{"anything-but": {"prefix": "Order"}}]}, True),
        ({"detail": {"amount": [{"numeric": [">", 100, "<=", 250]}]}}, True),
        ({"detail": {"amount": [{"numeric": ["<", 100]}]}}, False),
        ({"detail": {"amount": [250.0]}}, True),  # numbers compare as numbers
        ({"detail": {"amount": ["250"]}}, False),  # a string is not a number
        ({"detail": {"tags": ["eu"]}}, True),  # an array matches if any element does
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"missing": [{"exists": True}]}}, False),
        ({"detail": {"account_id": [{"exists": True}]}}, True),
        ({"detail": {"note": [None]}}, True),
        ({"detail": {"nested": {"flag": [True]}}}, True),
        ({"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}}, True),
        ({"detail": {"ip": [{"cidr": "10.1.0.0/16"}]}}, False),
        # Every field must match; within a field any value may.
        ({"source": ["x", "serverless-patterns.accounts"], "detail-type": ["Nope"]}, False),
        ({"$or": [{"detail-type": ["Nope"]}, {"detail": {"amount": [250]}}]}, True),
        ({"$or": [{"detail-type": ["Nope"]}, {"detail": {"amount": [1]}}]}, False),
    ],
)
def test_event_patterns_match_as_eventbridge_documents(
    pattern: dict[str, Any], expected: bool
) -> None:
    assert matches(parse(pattern), EVENT) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        '["not an object"]',
        '{"source": "not-a-list"}',
        '{"source": []}',
        '{"detail": {"amount": [{"numeric": ["~", 3]}]}}',
        '{"source": [{"prefix": "a", "suffix": "b"}]}',
        '{"source": [{"regex": "a.*"}]}',
    ],
)
def test_a_malformed_pattern_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidEventPatternError):
        parse(pattern)


def test_a_filter_matches_the_stream_record_by_its_top_level_keys() -> None:
    # GIVEN the event-sourcing publisher's filter and the fan-out reducer's
    new_events = parse('{"dynamodb": {"NewImage": {"kind": {"S": ["event"]}}}}')
    finished = parse('{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"n": {"N": ["0"]}}}}')
    event_insert = {"eventName": "INSERT", "dynamodb": {"NewImage": {"kind": {"S": "event"}}}}
    snapshot = {"eventName": "INSERT", "dynamodb": {"NewImage": {"kind": {"S": "snapshot"}}}}
    removal = {"eventName": "REMOVE", "dynamodb": {"OldImage": {"kind": {"S": "event"}}}}
    modified = {"eventName": "MODIFY", "dynamodb": {"NewImage": {"n": {"N": "0"}}}}

    # THEN only the records they describe pass
    assert [matches(new_events, r) for r in (event_insert, snapshot, removal)] == [
        True,
        False,
        False,
    ]
    assert [matches(finished, r) for r in (modified, {**modified, "eventName": "INSERT"})] == [
        True,
        False,
    ]


def _record(name: str, pk: str, sequence: int, image: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"Keys": {"pk": {"S": pk}}, "SequenceNumber": str(sequence)}
    if image is not None:
        body["NewImage"] = image
    return {"eventName": name, "dynamodb": body}


def test_moto_s_second_insert_of_a_created_item_is_dropped_keeping_the_full_image() -> None:
    # GIVEN moto's records for an UpdateItem that created "b" (keys only, then full)
    records = [
        _record("INSERT", "a", 1, {"pk": {"S": "a"}}),
        _record("INSERT", "b", 2, {"pk": {"S": "b"}}),
        _record("INSERT", "b", 3, {"pk": {"S": "b"}, "x": {"N": "1"}}),
        _record("MODIFY", "b", 4, {"pk": {"S": "b"}, "x": {"N": "2"}}),
    ]

    # THEN one INSERT per item is left, with the item's full image, in order
    kept = drop_moto_duplicate_inserts(records)
    assert [r["dynamodb"]["SequenceNumber"] for r in kept] == ["1", "3", "4"]


NUMBERS = ["101", "102", "103"]


@pytest.mark.parametrize(
    ("payload", "errored", "report", "restart"),
    [
        (None, False, True, None),
        ({"batchItemFailures": []}, False, True, None),
        # The checkpoint is the lowest reported sequence number.
        (
            {"batchItemFailures": [{"itemIdentifier": "103"}, {"itemIdentifier": "102"}]},
            False,
            True,
            1,
        ),
        ({"batchItemFailures": [{"itemIdentifier": "101"}]}, False, True, 0),
        # Unknown, empty or missing identifiers fail the whole batch.
        ({"batchItemFailures": [{"itemIdentifier": "999"}]}, False, True, 0),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, False, True, 0),
        ({"batchItemFailures": [{}]}, False, True, 0),
        # Without ReportBatchItemFailures a report means nothing; an error fails all.
        ({"batchItemFailures": [{"itemIdentifier": "102"}]}, False, False, None),
        (None, True, True, 0),
    ],
)
def test_where_a_stream_batch_is_retried_from(
    payload: Any, errored: bool, report: bool, restart: int | None
) -> None:
    assert (
        first_failed_index(NUMBERS, payload, errored=errored, report_item_failures=report)
        == restart
    )


def test_the_on_failure_record_describes_the_batch_as_lambda_does() -> None:
    created = datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)
    records = [
        {"dynamodb": {"SequenceNumber": "7", "ApproximateCreationDateTime": created}},
        {"dynamodb": {"SequenceNumber": "9", "ApproximateCreationDateTime": created}},
    ]
    failed = InvocationResult("req-1", error={"errorType": "Boom", "errorMessage": "x"})

    record = stream_failure_record(
        records=records,
        shard_id="shardId-1",
        stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        condition="RetryAttemptsExhausted",
        invoke_count=3,
        last_result=failed,
        now=datetime(2026, 1, 1, 12, 1, tzinfo=UTC),
    )

    assert record == {
        "requestContext": {
            "requestId": "req-1",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 3,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": "2026-01-01T12:01:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-1",
            "startSequenceNumber": "7",
            "endSequenceNumber": "9",
            "approximateArrivalOfFirstRecord": "2026-01-01T12:00:05Z",
            "approximateArrivalOfLastRecord": "2026-01-01T12:00:05Z",
            "batchSize": 2,
            "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026",
        },
    }


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", EVENT),
        ("$.detail.amount", 250),
        ("$.detail-type", "AccountCredited"),
        ("$.detail.tags[1]", "eu"),
        ("$.detail['account_id']", "a-1"),
        ("$.detail.absent", None),
    ],
)
def test_json_paths_select_parts_of_the_event(path: str, value: Any) -> None:
    assert json_path(EVENT, path) == value


RULE = {"Name": "r", "Arn": "arn:aws:events:us-east-1:123456789012:rule/bus/r"}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({}, EVENT),
        ({"Input": '{"fixed": 1}'}, {"fixed": 1}),
        ({"InputPath": "$.detail.tags"}, ["vip", "eu"]),
        (
            {
                "InputTransformer": {
                    "InputPathsMap": {"kind": "$.detail-type", "amount": "$.detail.amount"},
                    "InputTemplate": '{"text": "<kind> of <amount>", "amount": <amount>, '
                    '"rule": "<aws.events.rule-name>"}',
                }
            },
            {"text": "AccountCredited of 250", "amount": 250, "rule": "r"},
        ),
    ],
)
def test_targets_receive_the_event_or_its_transformation(
    target: dict[str, Any], expected: Any
) -> None:
    assert json.loads(target_input(target, EVENT, RULE)) == expected
