"""A second tiny assembly for the asynchronous mechanisms: Invoke from handler code,
S3 notifications and EventBridge Scheduler (booted once, see ``conftest.py``)."""

from __future__ import annotations

from typing import Any

from cfn_resources import (
    allow,
    arn,
    event_invoke_config,
    function_resource,
    lambda_permission,
    on_failure,
    policy_resource,
    queue_resource,
    ref_outputs,
    role_resource,
)

HANDLER = """
import json
import os
import time

import boto3
from botocore.config import Config

# No SDK retries: a throttled Invoke must come back as the 429 it got.
lambda_client = boto3.client("lambda", config=Config(retries={"total_max_attempts": 1}))
sqs = boto3.client("sqs")


def call(event, context):
    try:
        response = lambda_client.invoke(
            FunctionName=event["target"],
            InvocationType=event.get("type", "RequestResponse"),
            Payload=json.dumps(event.get("payload", {})),
        )
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        return {"error": code, "message": str(error)}
    body = response["Payload"].read()
    return {
        "status": response["StatusCode"],
        "function_error": response.get("FunctionError"),
        "payload": json.loads(body) if body else None,
    }


def echo(event, context):
    return {"echo": event, "request_id": context.aws_request_id}


def fail(event, context):
    # Takes the seconds the event asks first (test_invoke.py: an attempt that lasts).
    time.sleep(event.get("seconds", 0) if isinstance(event, dict) else 0)
    raise ValueError("always fails")


def chain(event, context):
    hop = event.get("hop", 1)
    sqs.send_message(
        QueueUrl=os.environ["RECORD_QUEUE_URL"],
        MessageBody=json.dumps({"hop": hop, "function": context.function_name}),
    )
    if hop < event.get("stop", 1000):
        lambda_client.invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps({**event, "hop": hop + 1}),
        )
    return hop


def limited(event, context):
    # Does what the event asks and reports what happened (test_limits.py).
    action = event["action"]
    try:
        if action == "sleep":
            time.sleep(event["seconds"])
        elif action == "hold":
            # Busy until the test creates the file at "path" (at most "seconds").
            end = time.monotonic() + event["seconds"]
            while not os.path.exists(event["path"]) and time.monotonic() < end:
                time.sleep(0.02)
        elif action == "allocate":
            block = b"x" * (event["mb"] * 1024 * 1024)  # touched: resident
            time.sleep(0.5)
            return len(block)
        elif action == "write":
            with open(event["path"], "wb") as file:
                file.seek(event.get("offset", 0))
                file.write(b"x")
            os.remove(event["path"])
        return {"ok": True}
    except OSError as error:
        return {"ok": False, "errno": error.errno, "error": str(error)}


def record(event, context):
    sqs.send_message(QueueUrl=os.environ["RECORD_QUEUE_URL"], MessageBody=json.dumps(event))
    return "recorded"
"""


def _function(
    handler: str,
    role: str,
    *,
    environment: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return function_resource(handler, role, timeout=10, environment=environment or {}, extra=extra)


def _role(name: str, service: str = "lambda.amazonaws.com") -> dict[str, Any]:
    return {name: role_resource(service)}


def _policy(name: str, role: str, statements: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """``name``: ``role`` may do each action on the ARNs of the resources it names."""
    allowed = [allow(action, [arn(resource) for resource in on]) for action, on in statements]
    return {name: policy_resource(name, role, allowed)}


def _conditional_scheduler_role(name: str, account: Any) -> dict[str, Any]:
    """A role Scheduler may assume for schedules of this stack's group in ``account``,
    allowed to invoke Echo."""
    role = role_resource(
        "scheduler.amazonaws.com",
        condition={
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {
                "aws:SourceArn": {
                    "Fn::Sub": "arn:aws:scheduler:${AWS::Region}:${AWS::AccountId}"
                    ":schedule-group/${Group}"
                }
            },
        },
    )
    return {
        name: role,
        **_policy(f"{name}Policy", name, [("lambda:InvokeFunction", ["Echo"])]),
    }


RECORD_QUEUE = {"RECORD_QUEUE_URL": {"Ref": "Records"}}

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Records": queue_resource(),
        "Failures": queue_resource(),
        "Successes": queue_resource(),
        "DeadLetters": queue_resource(),
        "ChainDeadLetters": queue_resource(),
        "ScheduleDeadLetters": queue_resource(),
        **_role("BasicRole"),
        **_role("CallerRole"),
        **_role("FailingRole"),
        **_role("ChainRole"),
        **_role("RecordRole"),
        **_role("SchedulerRole", "scheduler.amazonaws.com"),
        "Echo": _function("app.echo", "BasicRole"),
        "Failing": _function(
            "app.fail",
            "FailingRole",
            extra={"DeadLetterConfig": {"TargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]}}},
        ),
        "Caller": _function("app.call", "CallerRole"),
        "Unauthorized": _function("app.call", "BasicRole"),
        "Chain": _function(
            "app.chain",
            "ChainRole",
            environment=RECORD_QUEUE,
            extra={"DeadLetterConfig": {"TargetArn": {"Fn::GetAtt": ["ChainDeadLetters", "Arn"]}}},
        ),
        "AllowedChain": _function(
            "app.chain", "ChainRole", environment=RECORD_QUEUE, extra={"RecursiveLoop": "Allow"}
        ),
        "Recorder": _function("app.record", "RecordRole", environment=RECORD_QUEUE),
        "Succeeding": _function("app.echo", "FailingRole"),
        "Aging": _function("app.fail", "FailingRole"),
        "Expired": queue_resource(),
        # Defaults: 128 MB memory, 512 MB ephemeral storage.
        "Limited": _function("app.limited", "BasicRole"),
        "Reserved": _function(
            "app.limited", "BasicRole", extra={"ReservedConcurrentExecutions": 1}
        ),
        **_policy(
            "CallerPolicy",
            "CallerRole",
            [("lambda:InvokeFunction", ["Echo", "Failing", "Reserved"])],
        ),
        **_policy(
            "FailingPolicy",
            "FailingRole",
            [("sqs:SendMessage", ["Failures", "Successes", "DeadLetters", "Expired"])],
        ),
        **_policy(
            "ChainPolicy",
            "ChainRole",
            [
                ("sqs:SendMessage", ["Records", "ChainDeadLetters"]),
                ("lambda:InvokeFunction", ["Chain", "AllowedChain"]),
            ],
        ),
        **_policy("RecordPolicy", "RecordRole", [("sqs:SendMessage", ["Records"])]),
        **_policy(
            "SchedulerPolicy",
            "SchedulerRole",
            [("lambda:InvokeFunction", ["Recorder"]), ("sqs:SendMessage", ["ScheduleDeadLetters"])],
        ),
        "FailingConfig": event_invoke_config(
            "Failing", MaximumRetryAttempts=2, DestinationConfig=on_failure("Failures")
        ),
        "SucceedingConfig": event_invoke_config(
            "Succeeding",
            MaximumRetryAttempts=0,
            DestinationConfig={"OnSuccess": {"Destination": arn("Successes")}},
        ),
        # The retry comes a minute after the first attempt ends, and the test's first
        # attempt lasts 2 s of real time (120 s at the fixture's clock speed): the retry
        # finds the event older than 170 s whenever it runs, while the first attempt has
        # 170 s (2.8 s of real time) to start. With 60 s (1 s of real time) a first
        # attempt a loaded machine ran late found the event already too old.
        "AgingConfig": event_invoke_config(
            "Aging", MaximumEventAgeInSeconds=170, DestinationConfig=on_failure("Expired")
        ),
        # S3: objects created under in/ ending .txt, and deletions anywhere, notify Recorder.
        "Uploads": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "UploadsNotifications": {
            "Type": "Custom::S3BucketNotifications",
            "Properties": {
                "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:cdk-handler",
                "BucketName": {"Ref": "Uploads"},
                "NotificationConfiguration": {
                    "LambdaFunctionConfigurations": [
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {
                                    "FilterRules": [
                                        {"Name": "suffix", "Value": ".txt"},
                                        {"Name": "prefix", "Value": "in/"},
                                    ]
                                }
                            },
                            "LambdaFunctionArn": {"Fn::GetAtt": ["Recorder", "Arn"]},
                        },
                        {
                            "Id": "removals",
                            "Events": ["s3:ObjectRemoved:Delete"],
                            "LambdaFunctionArn": {"Fn::GetAtt": ["Recorder", "Arn"]},
                        },
                    ]
                },
                "Managed": True,
            },
        },
        "UploadsPermission": lambda_permission(
            "Recorder",
            "s3.amazonaws.com",
            arn("Uploads"),
            SourceAccount={"Ref": "AWS::AccountId"},
        ),
        "Group": {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {}},
        # Scheduler roles whose trust policy conditions on the account and schedule group
        # (localstage/tests/test_iam_services.py): the right values, and a wrong account.
        **_conditional_scheduler_role("GroupSchedulerRole", {"Ref": "AWS::AccountId"}),
        **_conditional_scheduler_role("OtherAccountSchedulerRole", "111122223333"),
    },
    "Outputs": ref_outputs(names=("Group",), RecordQueueUrl="Records", BucketName="Uploads"),
}
