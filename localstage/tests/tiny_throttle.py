"""A third tiny assembly: functions whose reserved concurrency throttles their
asynchronous events and event source mappings (``test_limits.py``, fixture
``throttle_stage`` in ``conftest.py``)."""

from __future__ import annotations

from typing import Any

from cfn_resources import (
    allow,
    arn,
    event_invoke_config,
    event_source_mapping,
    function_resource,
    on_failure,
    policy_resource,
    queue_resource,
    redriven_queue,
    ref_outputs,
    role_resource,
    table_resource,
)

HANDLER = """
import os
import time


def run(event, context):
    # Sleeps as long as the event asks (0 for stream and queue batches), or until the
    # file at "release" exists if it names one.
    seconds = event.get("seconds", 0) if isinstance(event, dict) else 0
    release = event.get("release") if isinstance(event, dict) else None
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (release and os.path.exists(release)):
        time.sleep(0.02)
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


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Role": role_resource(),
        # Test-sized: the function may read its sources and write its destinations.
        "RolePolicy": policy_resource(
            "RolePolicy",
            "Role",
            [
                allow(
                    [
                        "sqs:SendMessage",
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                        "dynamodb:DescribeStream",
                        "dynamodb:GetShardIterator",
                        "dynamodb:GetRecords",
                    ],
                    "*",
                )
            ],
        ),
        # Asynchronous: never runs (0), so events age out to the on-failure queue.
        "Unavailable": _function(0),
        "AsyncFailures": queue_resource(),
        # 300 s of stage time (5 s at the fixture's clock speed): room for six throttles
        # (1 + 2 + ... + 32 s) even when a loaded machine runs the attempts late; with
        # 60 s (1 s of real time) a late first attempt found the event already too old.
        "UnavailableConfig": event_invoke_config(
            "Unavailable",
            MaximumRetryAttempts=0,
            MaximumEventAgeInSeconds=300,
            DestinationConfig=on_failure("AsyncFailures"),
        ),
        # Asynchronous: one at a time.
        "OneAtATime": _function(1),
        # SQS: a consumer that never runs, its queue redriving after two receives.
        "Drained": _function(0),
        "WorkDeadLetters": queue_resource(),
        "Work": redriven_queue("WorkDeadLetters"),
        "WorkMapping": event_source_mapping("Drained", arn("Work"), BatchSize=10),
        # DynamoDB stream: a consumer that never runs; no retries, records age out in 60 s.
        "Stalled": _function(0),
        "Ledger": table_resource(stream=True),
        "StreamFailures": queue_resource(),
        "LedgerMapping": event_source_mapping(
            "Stalled",
            arn("Ledger", "StreamArn"),
            StartingPosition="TRIM_HORIZON",
            MaximumRetryAttempts=0,
            MaximumRecordAgeInSeconds=60,
            DestinationConfig=on_failure("StreamFailures"),
        ),
    },
    "Outputs": ref_outputs(
        names=("Ledger",), urls=("AsyncFailures", "Work", "WorkDeadLetters", "StreamFailures")
    ),
}
