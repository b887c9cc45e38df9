"""Builders for the EventBridge Scheduler target input and the Lambda destination records,
in their real shapes (re-exported by ``tests.support.events``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.support.fakes import ACCOUNT_ID, REGION

# --------------------------------------------------------------------------- EventBridge Scheduler

#: The context attributes EventBridge Scheduler substitutes in a target's input.
SCHEDULER_CONTEXT_ATTRIBUTES = (
    "<aws.scheduler.schedule-arn>",
    "<aws.scheduler.scheduled-time>",
    "<aws.scheduler.execution-id>",
    "<aws.scheduler.attempt-number>",
)


def schedule_arn(name: str, *, group: str = "default") -> str:
    """The ARN of schedule ``name`` in ``group``."""
    return f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/{group}/{name}"


def scheduler_target_input(
    input_text: str,
    *,
    schedule_arn: str,
    scheduled_time: datetime,
    execution_id: str | None = None,
    attempt_number: int = 1,
) -> Any:
    """The event a Lambda target receives: the schedule's ``Target.Input`` after the
    Scheduler replaced its context attributes.

    The Scheduler substitutes the placeholders in the input text, so an attribute
    inside a JSON string becomes a string (``"<aws.scheduler.attempt-number>"`` becomes
    ``"1"``). The scheduled time is UTC with second precision, e.g.
    ``2025-03-14T09:30:00Z``; the execution id is one per attempted invocation.
    """
    values = {
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.scheduled-time>": scheduled_time.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "<aws.scheduler.execution-id>": execution_id or uuid.uuid4().hex[:16],
        "<aws.scheduler.attempt-number>": str(attempt_number),
    }
    for placeholder, value in values.items():
        input_text = input_text.replace(placeholder, value)
    return json.loads(input_text)


# --------------------------------------------------------------------------- Lambda destinations


def lambda_function_arn(function_name: str, *, qualifier: str | None = "$LATEST") -> str:
    """A function ARN, qualified as destination records name it (``...:$LATEST``)."""
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def lambda_error_payload(
    error_type: str, message: str, *, request_id: str | None = None
) -> dict[str, Any]:
    """What the Python runtime returns for an unhandled exception (``responsePayload``)."""
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id or str(uuid.uuid4()),
        "stackTrace": [
            f'  File "/var/task/handler.py", line 42, in handler\n    raise {error_type}(message)\n'
        ],
    }


def lambda_destination_record(
    request_payload: Any,
    *,
    function_name: str = "TestFunction",
    condition: str = "Success",
    response_payload: Any = None,
    approximate_invoke_count: int = 1,
    request_id: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The record Lambda sends a destination after an asynchronous invocation.

    ``condition`` is ``Success`` (on-success destination), ``RetriesExhausted`` or
    ``EventAgeExceeded`` (on-failure). A failed invocation's ``responseContext`` has
    ``functionError: "Unhandled"`` and its ``responsePayload`` is the runtime's error
    object (see :func:`lambda_error_payload`); an event that expired before any
    attempt has neither.
    """
    request_id = request_id or str(uuid.uuid4())
    moment = timestamp or datetime(2025, 3, 14, 9, 30, 1, 250000, tzinfo=UTC)
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": lambda_function_arn(function_name),
            "condition": condition,
            "approximateInvokeCount": approximate_invoke_count,
        },
        "requestPayload": request_payload,
    }
    if condition == "Success":
        record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST"}
        record["responsePayload"] = response_payload
    elif condition == "RetriesExhausted":
        record["responseContext"] = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        }
        record["responsePayload"] = (
            response_payload
            if response_payload is not None
            else lambda_error_payload("Exception", "failed", request_id=request_id)
        )
    return record
