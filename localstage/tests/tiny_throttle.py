"""A third tiny assembly: functions whose reserved concurrency throttles their
asynchronous events and event source mappings (``test_limits.py``, fixture
``throttle_stage`` in ``conftest.py``)."""

from __future__ import annotations

from typing import Any

from tiny import function_resource, role_resource

HANDLER = """
import time


def run(event, context):
    # Sleeps as long as the event asks (0 for stream and queue batches).
    seconds = event.get("seconds", 0) if isinstance(event, dict) else 0
    time.sleep(seconds)
    return {"ok": True}
"""


def _function(reserved: int) -> dict[str, Any]:
    return function_resource(
        "app.run",
        "Role",
        timeout=10,
        environment={},
        depends_on=["RolePolicy"],
        extra={"ReservedConcurrentExecutions": reserved},
    )


def _queue(properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"Type": "AWS::SQS::Queue", "Properties": properties or {}}


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Role": role_resource(),
        # Test-sized: the function may read its sources and write its destinations.
        "RolePolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "RolePolicy",
                "Roles": [{"Ref": "Role"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "sqs:SendMessage",
                                "sqs:ReceiveMessage",
                                "sqs:DeleteMessage",
                                "sqs:ChangeMessageVisibility",
                                "sqs:GetQueueAttributes",
                                "dynamodb:DescribeStream",
                                "dynamodb:GetShardIterator",
                                "dynamodb:GetRecords",
                            ],
                            "Resource": "*",
                        }
                    ],
                },
            },
        },
        # Asynchronous: never runs (0), so events age out to the on-failure queue.
        "Unavailable": _function(0),
        "AsyncFailures": _queue(),
        "UnavailableConfig": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": "Unavailable"},
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": 0,
                "MaximumEventAgeInSeconds": 60,
                "DestinationConfig": {
                    "OnFailure": {"Destination": {"Fn::GetAtt": ["AsyncFailures", "Arn"]}}
                },
            },
        },
        # Asynchronous: one at a time.
        "OneAtATime": _function(1),
        # SQS: a consumer that never runs, its queue redriving after two receives.
        "Drained": _function(0),
        "WorkDeadLetters": _queue(),
        "Work": _queue(
            {
                "VisibilityTimeout": 30,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["WorkDeadLetters", "Arn"]},
                    "maxReceiveCount": 2,
                },
            }
        ),
        "WorkMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "FunctionName": {"Ref": "Drained"},
                "EventSourceArn": {"Fn::GetAtt": ["Work", "Arn"]},
                "BatchSize": 10,
            },
        },
        # DynamoDB stream: a consumer that never runs; no retries, records age out in 60 s.
        "Stalled": _function(0),
        "Ledger": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            },
        },
        "StreamFailures": _queue(),
        "LedgerMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "FunctionName": {"Ref": "Stalled"},
                "EventSourceArn": {"Fn::GetAtt": ["Ledger", "StreamArn"]},
                "StartingPosition": "TRIM_HORIZON",
                "MaximumRetryAttempts": 0,
                "MaximumRecordAgeInSeconds": 60,
                "DestinationConfig": {
                    "OnFailure": {"Destination": {"Fn::GetAtt": ["StreamFailures", "Arn"]}}
                },
            },
        },
    },
    "Outputs": {
        "AsyncFailuresUrl": {"Value": {"Ref": "AsyncFailures"}},
        "WorkUrl": {"Value": {"Ref": "Work"}},
        "WorkDeadLettersUrl": {"Value": {"Ref": "WorkDeadLetters"}},
        "LedgerName": {"Value": {"Ref": "Ledger"}},
        "StreamFailuresUrl": {"Value": {"Ref": "StreamFailures"}},
    },
}
