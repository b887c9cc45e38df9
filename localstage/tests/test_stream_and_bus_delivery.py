"""DynamoDB stream mappings and EventBridge rules on a small hand-written stage.

The consumer counts how often it processed each item (``Processed`` table), so a
record retried after it succeeded shows up as a count of 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from cfn_resources import (
    allow,
    arn,
    event_source_mapping,
    function_resource,
    lambda_permission,
    on_failure,
    policy_resource,
    queue_resource,
    ref_outputs,
    role_resource,
    table_resource,
)
from stage_queues import take, wait_until
from tiny import booted

from localstage.sources.eventbridge import EventBridgeDelivery
from localstage.stage import LocalStage
from localstage.target import eventbridge_queue_policy

HANDLER = """
import json
import os

import boto3
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

dynamodb = boto3.client("dynamodb")
PROCESSED = os.environ["PROCESSED_TABLE"]


def count(key):
    dynamodb.update_item(
        TableName=PROCESSED,
        Key={"pk": {"S": key}},
        UpdateExpression="ADD times :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def stream(event, context):
    DynamoDBStreamModel.model_validate(event)  # the shape Lambda delivers
    failures = []
    for record in event["Records"]:
        key = record["dynamodb"]["NewImage"]["pk"]["S"]
        if key.startswith("fail-"):
            raise RuntimeError(f"cannot process {key}")
        if key.startswith("partial-"):
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            continue
        if key.startswith("seq-"):
            dynamodb.update_item(
                TableName=PROCESSED,
                Key={"pk": {"S": "arrival-order"}},
                UpdateExpression="SET keys_seen = list_append(if_not_exists(keys_seen, :none), :k)",
                ExpressionAttributeValues={":none": {"L": []}, ":k": {"L": [{"S": key}]}},
            )
        count(key)
    return {"batchItemFailures": failures}


def bus(event, context):
    count("bus-" + event["detail"]["id"])
    return None
"""

#: The stream mapping's filter: inserts (no old image; AWS filters DynamoDB records on
#: their ``dynamodb`` key only, not ``eventName``) whose key does not start ``skip-``.
INSERTS_NOT_SKIPPED = {
    "dynamodb": {
        "OldImage": {"pk": {"S": [{"exists": False}]}},
        "NewImage": {"pk": {"S": [{"anything-but": {"prefix": "skip-"}}]}},
    },
}
STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"]


def _function(handler: str) -> dict[str, Any]:
    return function_resource(
        handler,
        "Role",
        timeout=10,
        environment={"PROCESSED_TABLE": {"Ref": "Processed"}},
        code={"S3Bucket": "assets", "S3Key": "0123456789abcdef.zip"},
        depends_on=["RolePolicy"],
    )


def _events_queue_policy(queues: list[str], rule: str) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue} for queue in queues],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                        "Resource": arn(queue),
                        "Condition": {"ArnEquals": {"aws:SourceArn": arn(rule)}},
                    }
                    for queue in queues
                ],
            },
        },
    }


def _rule(pattern: dict[str, Any], *targets: dict[str, Any]) -> dict[str, Any]:
    """A rule of the bus ``Bus`` sending the events that match ``pattern`` to ``targets``."""
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "EventBusName": {"Ref": "Bus"},
            "EventPattern": pattern,
            "Targets": list(targets),
        },
    }


def _dead_lettered_target(target_id: str, target: str) -> dict[str, Any]:
    """A rule target whose failed events go to ``BusDeadLetters``."""
    return {"Id": target_id, "Arn": arn(target), "DeadLetterConfig": {"Arn": arn("BusDeadLetters")}}


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Ledger": table_resource(stream=True),
        # Consumed from LATEST, retried without limit until records are 120 s old: 4 s
        # of real time at the fixture's clock speed for the two or more attempts the test
        # asks for (60 s, 2 s, left a loaded machine that ran one attempt late only one).
        "Aged": table_resource(stream=True),
        "AgedFailures": queue_resource(),
        "Processed": table_resource(),
        "StreamFailures": queue_resource(),
        "RuleQueue": queue_resource(),
        "TransformedQueue": queue_resource(),
        "BusDeadLetters": queue_resource(),
        "Role": role_resource(),
        "RolePolicy": policy_resource(
            "RolePolicy",
            "Role",
            [
                allow(STREAM_ACTIONS, [arn("Ledger", "StreamArn"), arn("Aged", "StreamArn")]),
                allow("dynamodb:UpdateItem", arn("Processed")),
                allow("sqs:SendMessage", [arn("StreamFailures"), arn("AgedFailures")]),
            ],
        ),
        "StreamConsumer": _function("app.stream"),
        "BusConsumer": _function("app.bus"),
        "Mapping": event_source_mapping(
            "StreamConsumer",
            arn("Ledger", "StreamArn"),
            StartingPosition="TRIM_HORIZON",
            BatchSize=10,
            BisectBatchOnFunctionError=True,
            MaximumRetryAttempts=1,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            FilterCriteria={"Filters": [{"Pattern": json.dumps(INSERTS_NOT_SKIPPED)}]},
            DestinationConfig=on_failure("StreamFailures"),
        ),
        "AgedMapping": event_source_mapping(
            "StreamConsumer",
            arn("Aged", "StreamArn"),
            StartingPosition="LATEST",
            MaximumRecordAgeInSeconds=120,
            DestinationConfig=on_failure("AgedFailures"),
        ),
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "tiny-bus"}},
        "BigAmounts": _rule(
            {"source": ["tiny"], "detail": {"amount": [{"numeric": [">", 10]}]}},
            {"Id": "whole", "Arn": arn("RuleQueue")},
            {
                "Id": "transformed",
                "Arn": arn("TransformedQueue"),
                "InputTransformer": {
                    "InputPathsMap": {"amount": "$.detail.amount", "kind": "$.detail-type"},
                    "InputTemplate": '{"kind": "<kind>", "amount": <amount>}',
                },
            },
        ),
        "Invocations": _rule(
            {"detail-type": ["invoke-me"]}, {"Id": "fn", "Arn": arn("BusConsumer")}
        ),
        "InvocationsPermission": lambda_permission(
            "BusConsumer", "events.amazonaws.com", arn("Invocations")
        ),
        # EventBridge sends to a queue as events.amazonaws.com: the queue policy must let
        # it, for the rule (as CDK's SqsQueue target writes it).
        "RuleQueuesPolicy": _events_queue_policy(["RuleQueue", "TransformedQueue"], "BigAmounts"),
        # A queue whose policy lets only BigAmounts send, targeted by another rule.
        "GuardedQueue": queue_resource(),
        "GuardedQueuePolicy": _events_queue_policy(["GuardedQueue"], "BigAmounts"),
        "Sneaky": _rule(
            {"detail-type": ["sneaky"]}, _dead_lettered_target("guarded", "GuardedQueue")
        ),
        # Targets the same function, but no permission lets this rule invoke it.
        "Unpermitted": _rule(
            {"detail-type": ["unpermitted"]}, _dead_lettered_target("fn", "BusConsumer")
        ),
    },
    "Outputs": ref_outputs(
        names=("Ledger", "Aged", "Processed"),
        urls=(
            "AgedFailures",
            "StreamFailures",
            "RuleQueue",
            "TransformedQueue",
            "BusDeadLetters",
            "GuardedQueue",
        ),
    ),
}


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStage]:
    root = tmp_path_factory.mktemp("streams")
    with booted(root, TEMPLATE, HANDLER, clock_speed=30) as running:
        yield running


def _out(stage: LocalStage, name: str) -> str:
    return str(stage.output("test-Tiny", name))


def _write_together(stage: LocalStage, *keys: str) -> None:
    """One transaction: its records are read, filtered and batched together."""
    stage.cloud.client("dynamodb").transact_write_items(
        TransactItems=[
            {"Put": {"TableName": _out(stage, "LedgerName"), "Item": {"pk": {"S": key}}}}
            for key in keys
        ]
    )


def _processed(stage: LocalStage, key: str) -> int:
    item = (
        stage.cloud.client("dynamodb")
        .get_item(TableName=_out(stage, "ProcessedName"), Key={"pk": {"S": key}})
        .get("Item")
    )
    return int(item["times"]["N"]) if item else 0


def _wait(description: str, condition: Any, timeout: float = 20) -> Any:
    return wait_until(description, condition, timeout)


def _messages(stage: LocalStage, queue_output: str) -> list[dict[str, Any]]:
    return take(stage, _out(stage, queue_output))


def test_bisect_isolates_the_failing_record_and_the_rest_run_once(stage: LocalStage) -> None:
    # WHEN one record of a batch of four always fails the function
    _write_together(stage, "ok-a", "ok-b", "fail-c", "ok-d")

    # THEN its batch info reaches the on-failure destination alone, after one retry
    [message] = _wait(
        "the failed record's batch info", lambda: _messages(stage, "StreamFailuresUrl")
    )
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["streamArn"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/")
    assert "Records" not in record  # metadata only, as on AWS
    # AND the others were processed: a and b in the failed batch (before the function
    # raised at c) and once more in their half, d once in its own (without bisection
    # the whole batch would have been given up on, d never processed)
    assert [_processed(stage, key) for key in ("ok-a", "ok-b", "ok-d", "fail-c")] == [2, 2, 1, 0]


def test_a_partial_failure_checkpoints_at_the_lowest_reported_record(stage: LocalStage) -> None:
    # WHEN the function reports the middle record of three as failed, every time
    _write_together(stage, "ok-e", "partial-f", "ok-g")

    # THEN the records from it on are retried (ok-g twice), the one before is not,
    # and after the retry the remaining two are given up on together
    [message] = _wait(
        "the given-up records' batch info", lambda: _messages(stage, "StreamFailuresUrl")
    )
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert info["batchSize"] == 2
    assert int(info["endSequenceNumber"]) > int(info["startSequenceNumber"])
    assert [_processed(stage, key) for key in ("ok-e", "ok-g")] == [1, 2]


def test_filtered_records_never_reach_the_function(stage: LocalStage) -> None:
    dynamodb = stage.cloud.client("dynamodb")
    ledger = _out(stage, "LedgerName")

    # WHEN an excluded key is written, a processed item is modified, and then a
    # wanted item follows them in the stream
    _write_together(stage, "ok-h")
    _wait("ok-h to be processed", lambda: _processed(stage, "ok-h") == 1)
    _write_together(stage, "skip-i")
    dynamodb.put_item(TableName=ledger, Item={"pk": {"S": "ok-h"}, "v": {"N": "2"}})
    _write_together(stage, "ok-j")

    # THEN only the wanted INSERT ran the function
    _wait("ok-j to be processed", lambda: _processed(stage, "ok-j") == 1)
    assert (_processed(stage, "skip-i"), _processed(stage, "ok-h")) == (0, 1)


def test_records_of_a_shard_reach_the_function_in_order_across_batches(
    stage: LocalStage,
) -> None:
    dynamodb = stage.cloud.client("dynamodb")

    # WHEN 25 items are written one by one (batches hold at most 10)
    keys = [f"seq-{index:02d}" for index in range(25)]
    for key in keys:
        dynamodb.put_item(TableName=_out(stage, "LedgerName"), Item={"pk": {"S": key}})

    # THEN the function saw them in the order they were written, each once
    def arrival_order() -> list[str] | None:
        item = dynamodb.get_item(
            TableName=_out(stage, "ProcessedName"), Key={"pk": {"S": "arrival-order"}}
        ).get("Item")
        seen = [value["S"] for value in (item or {}).get("keys_seen", {}).get("L", [])]
        return seen if len(seen) >= len(keys) else None

    assert _wait("25 records to be processed", arrival_order) == keys


def test_an_update_item_that_creates_an_item_is_one_insert(stage: LocalStage) -> None:
    # WHEN UpdateItem creates an item (moto records two INSERTs for it)
    stage.cloud.client("dynamodb").update_item(
        TableName=_out(stage, "LedgerName"),
        Key={"pk": {"S": "ok-k"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"N": "1"}},
    )

    # THEN the function sees it once, as on AWS
    _wait("ok-k to be processed", lambda: _processed(stage, "ok-k") == 1)
    _write_together(stage, "ok-l")
    _wait("ok-l to be processed", lambda: _processed(stage, "ok-l") == 1)
    assert _processed(stage, "ok-k") == 1


def test_a_record_too_old_is_given_up_on_however_many_retries_are_left(
    stage: LocalStage,
) -> None:
    # WHEN a record fails every time on a mapping with unlimited retries and a maximum
    # record age of 120 s (4 s of real time at this stage's clock speed)
    stage.cloud.client("dynamodb").put_item(
        TableName=_out(stage, "AgedName"), Item={"pk": {"S": "fail-old"}}
    )

    # THEN once the record is older than that it goes to the destination, having been
    # tried several times
    [message] = _wait("the aged record's batch info", lambda: _messages(stage, "AgedFailuresUrl"))
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] > 1
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1


def _put_event(stage: LocalStage, **entry: Any) -> None:
    response = stage.cloud.client("events").put_events(
        Entries=[{"EventBusName": "tiny-bus", "Source": "tiny", **entry}]
    )
    assert response["FailedEntryCount"] == 0


def test_a_rule_delivers_matching_events_to_its_queue_targets(stage: LocalStage) -> None:
    # WHEN two events are put, one below the rule's numeric threshold
    when = datetime(2025, 5, 17, 8, 30, 15, tzinfo=UTC)
    _put_event(stage, DetailType="small", Detail=json.dumps({"amount": 5}))
    _put_event(stage, DetailType="big", Detail=json.dumps({"amount": 50}), Time=when)

    # THEN only the matching one arrives, whole in one target, transformed in the other
    [whole] = _wait("the event in the rule's queue", lambda: _messages(stage, "RuleQueueUrl"))
    event = json.loads(whole["Body"])
    assert {key: event[key] for key in ("detail-type", "source", "time", "detail")} == {
        "detail-type": "big",
        "source": "tiny",
        "time": "2025-05-17T08:30:15Z",
        "detail": {"amount": 50},
    }
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    EventBridgeModel.model_validate(event)  # the shape Powertools parses
    [transformed] = _wait("the transformed event", lambda: _messages(stage, "TransformedQueueUrl"))
    assert json.loads(transformed["Body"]) == {"kind": "big", "amount": 50}
    assert _messages(stage, "RuleQueueUrl") == []


def test_a_lambda_target_runs_only_with_a_permission_for_its_rule(stage: LocalStage) -> None:
    # WHEN one event matches a rule allowed to invoke the function and one a rule that is not
    _put_event(stage, DetailType="invoke-me", Detail=json.dumps({"id": "allowed"}))
    _put_event(stage, DetailType="unpermitted", Detail=json.dumps({"id": "refused"}))

    # THEN the function ran for the first; the second went to the target's DLQ with
    # EventBridge's error attributes
    _wait("the function to run", lambda: _processed(stage, "bus-allowed") == 1)
    [dead] = _wait("the refused event in the DLQ", lambda: _messages(stage, "BusDeadLettersUrl"))
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "NoPermissions"
    assert attributes["RULE_ARN"].endswith(
        ":rule/tiny-bus/" + attributes["RULE_ARN"].rsplit("/", 1)[1]
    )
    assert json.loads(dead["Body"])["detail"] == {"id": "refused"}
    assert _processed(stage, "bus-refused") == 0


def test_a_queue_target_needs_a_queue_policy_for_its_rule(stage: LocalStage) -> None:
    """EventBridge sends to an SQS queue as ``events.amazonaws.com``: the queue's policy
    must allow ``sqs:SendMessage``, here only for another rule (``aws:SourceArn``), so the
    event goes to the target's DLQ
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions)."""
    # WHEN an event matches a rule whose queue's policy names another rule
    _put_event(stage, DetailType="sneaky", Detail=json.dumps({"id": "sneaky"}))

    # THEN it is not delivered: it is in the DLQ with an AccessDenied error
    [dead] = _wait("the refused event in the DLQ", lambda: _messages(stage, "BusDeadLettersUrl"))
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "AccessDenied"
    assert json.loads(dead["Body"])["detail"] == {"id": "sneaky"}
    assert _messages(stage, "GuardedQueueUrl") == []


class _UnavailableQueue:
    """An SQS client whose sends to one queue are throttled ``failures`` times."""

    def __init__(self, real: Any, queue_url: str, failures: int) -> None:
        self.real = real
        self.queue_url = queue_url
        self.failures = failures
        self.attempts = 0

    def send_message(self, **request: Any) -> Any:
        if request["QueueUrl"] == self.queue_url:
            self.attempts += 1
            if self.attempts <= self.failures:
                throttled: Any = {
                    "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                }
                raise ClientError(throttled, "SendMessage")
        return self.real.send_message(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize(("failures", "delivered"), [(2, True), (10, False)])
def test_a_retriable_target_failure_is_retried_per_its_retry_policy_then_dead_lettered(
    stage: LocalStage, failures: int, delivered: bool
) -> None:
    """When a target is unavailable (a retriable error such as throttling), EventBridge
    retries the delivery with back-off until the target's RetryPolicy
    (MaximumRetryAttempts, MaximumEventAgeInSeconds) is spent, then sends the event to
    the target's dead-letter queue; missing permissions or resources are not retried.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html
    """
    sqs = stage.cloud.client("sqs")
    events = stage.cloud.client("events")
    name = f"retried-{failures}"
    target_url = sqs.create_queue(QueueName=f"{name}-target")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for url in (target_url, dlq_url)
    }
    rule_arn = events.put_rule(
        Name=name, EventBusName="tiny-bus", EventPattern=json.dumps({"detail-type": [name]})
    )["RuleArn"]
    for url in (target_url, dlq_url):  # EventBridge may send to both (queue policies)
        policy = eventbridge_queue_policy(arn[url], rule_arn)
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    events.put_targets(
        Rule=name,
        EventBusName="tiny-bus",
        Targets=[
            {
                "Id": "queue",
                "Arn": arn[target_url],
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": arn[dlq_url]},
            }
        ],
    )
    # GIVEN a target queue that throttles the first `failures` sends
    delivery = next(s for s in stage.sources if isinstance(s, EventBridgeDelivery))
    real = delivery._sqs
    flaky = _UnavailableQueue(real, target_url, failures)
    delivery._sqs = flaky
    try:
        # WHEN an event matches its rule
        _put_event(stage, DetailType=name, Detail=json.dumps({"n": failures}))
        _wait(
            "the event in the target or its DLQ",
            lambda: (
                sqs.get_queue_attributes(
                    QueueUrl=target_url if delivered else dlq_url,
                    AttributeNames=["ApproximateNumberOfMessages"],
                )["Attributes"]["ApproximateNumberOfMessages"]
                != "0"
            ),
        )
    finally:
        delivery._sqs = real

    # THEN 2 throttles are retried into a delivery; 10 use up the 3 retries (4 attempts)
    # and the event is dead-lettered with the error
    if delivered:
        assert flaky.attempts == 3
        [message] = sqs.receive_message(QueueUrl=target_url)["Messages"]
        assert json.loads(message["Body"])["detail"] == {"n": failures}
        assert "Messages" not in sqs.receive_message(QueueUrl=dlq_url)
    else:
        assert flaky.attempts == 4
        [dead] = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"]
        assert dead["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ThrottlingException"
        assert "Messages" not in sqs.receive_message(QueueUrl=target_url)
