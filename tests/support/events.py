"""Builders for the events AWS delivers to Lambda, in their real shapes.

Shapes follow the AWS documentation samples and validate against the Powertools
parser models (``tests/unit/test_event_shapes.py`` checks that).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from boto3.dynamodb.types import TypeSerializer

from tests.support.fakes import ACCOUNT_ID, REGION

CALLER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"


@dataclass
class HttpResponse:
    """An API Gateway proxy response, with header names lower-cased and the body parsed.

    ``raw_body`` keeps the body text as sent, for byte-for-byte comparisons of replays.
    """

    status: int
    headers: dict[str, str]
    body: Any
    raw_body: str | None = None

    @classmethod
    def from_proxy(cls, raw: dict[str, Any]) -> HttpResponse:
        headers = {name.lower(): value for name, value in (raw.get("headers") or {}).items()}
        for name, values in (raw.get("multiValueHeaders") or {}).items():
            headers.setdefault(name.lower(), ",".join(values))
        body = raw.get("body")
        return cls(
            status=raw["statusCode"],
            headers=headers,
            body=json.loads(body) if body else None,
            raw_body=body,
        )


def assert_json_error(response: HttpResponse, status: int, code: str) -> None:
    """Assert the error shape every API answers: ``{"error": code, "message": "..."}``."""
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    assert response.body["error"] == code
    assert isinstance(response.body["message"], str) and response.body["message"]


def request_body(body: str | dict[str, Any] | None, *, base64_body: bool = False) -> str | None:
    """A proxy event's ``body``: a dict JSON-encoded, base64-encoded like API Gateway if asked.

    Examples
    --------
    >>> request_body({"a": 1}, base64_body=True)
    'eyJhIjogMX0='
    """
    text = json.dumps(body) if isinstance(body, dict) else body
    if base64_body and text is not None:
        text = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return text


def api_event(
    method: str,
    path: str,
    *,
    resource: str,
    body: str | dict[str, Any] | None = None,
    base64_body: bool = False,
    is_base64_encoded: bool = False,
    headers: dict[str, str] | None = None,
    multi_value_headers: dict[str, list[str]] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    user_arn: str | None = CALLER_ARN,
    stage: str = "api",
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event for an IAM-authorized call.

    A dict ``body`` is JSON-encoded; ``base64_body`` base64-encodes the body as API
    Gateway does for binary media types (``is_base64_encoded`` marks a body already
    encoded by the caller). ``multi_value_headers`` are headers sent more than once:
    as on AWS, ``multiValueHeaders`` carries every value and ``headers`` the last.
    """
    is_base64_encoded = is_base64_encoded or (base64_body and body is not None)
    body = request_body(body, base64_body=base64_body)
    all_headers = {
        "Accept": "application/json",
        "Host": f"abc123defg.execute-api.{REGION}.amazonaws.com",
        "User-Agent": "python-requests/2.32.3",
        "X-Amz-Date": "20250314T092653Z",
        "X-Amzn-Trace-Id": "Root=1-67d3f6ad-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **({"Content-Type": "application/json"} if body is not None else {}),
        **(headers or {}),
        **{name: values[-1] for name, values in (multi_value_headers or {}).items()},
    }
    all_multi_value_headers = {name: [value] for name, value in all_headers.items()}
    all_multi_value_headers.update(multi_value_headers or {})
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": all_multi_value_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": (
            {name: [value] for name, value in query.items()} if query else None
        ),
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "a1b2c3",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "HbOmEEK0IAMFxkg=",
            "requestTime": "14/Mar/2025:09:26:53 +0000",
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "abc123defg",
            "requestTimeEpoch": 1741944413589,
            "requestId": str(uuid.uuid4()),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": ACCOUNT_ID if user_arn else None,
                "cognitoIdentityId": None,
                "caller": "AIDAJQABLZS4A3QDU576Q" if user_arn else None,
                "sourceIp": "203.0.113.10",
                "principalOrgId": None,
                "accessKey": "AKIAIOSFODNN7EXAMPLE" if user_arn else None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": user_arn,
                "userAgent": "python-requests/2.32.3",
                "user": "AIDAJQABLZS4A3QDU576Q" if user_arn else None,
            },
            "domainName": f"abc123defg.execute-api.{REGION}.amazonaws.com",
            "apiId": "abc123defg",
        },
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    }


def sqs_record(
    body: str,
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    message_attributes: dict[str, Any] | None = None,
    queue_name: str = "test-queue",
) -> dict[str, Any]:
    """One record of an SQS event as the Lambda event source mapping delivers it."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": base64.b64encode(uuid.uuid4().bytes * 4).decode("ascii"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1741944413589",
            "SenderId": "AROAIWPX5BD2BHG722MW4:TestSender",
            "ApproximateFirstReceiveTimestamp": "1741944413600",
        },
        "messageAttributes": message_attributes or {},
        "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}",
        "awsRegion": REGION,
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    """An SQS event (a batch of records)."""
    return {"Records": list(records)}


def dynamodb_stream_record(
    *,
    keys: dict[str, Any],
    new_image: dict[str, Any] | None = None,
    old_image: dict[str, Any] | None = None,
    event_name: str = "MODIFY",
    view_type: str = "NEW_IMAGE",
    table_name: str = "test-table",
    sequence_number: str = "4421584500000000017450439091",
    created_epoch: int = 1741944413,
) -> dict[str, Any]:
    """One DynamoDB stream record as a Lambda event source mapping delivers it.

    ``keys`` and the images are plain Python values (Decimal/int for numbers),
    serialized here to DynamoDB's attribute-value JSON as the stream carries them.
    """
    serializer = TypeSerializer()

    def serialize(values: dict[str, Any]) -> dict[str, Any]:
        return {name: serializer.serialize(value) for name, value in values.items()}

    body: dict[str, Any] = {
        "ApproximateCreationDateTime": created_epoch,
        "Keys": serialize(keys),
        "SequenceNumber": sequence_number,
        "SizeBytes": 26,
        "StreamViewType": view_type,
    }
    if new_image is not None:
        body["NewImage"] = serialize(new_image)
    if old_image is not None:
        body["OldImage"] = serialize(old_image)
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": body,
        "eventSourceARN": (
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table_name}"
            "/stream/2025-03-14T09:26:53.589"
        ),
    }


def dynamodb_stream_event(*records: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB stream event (a batch of records)."""
    return {"Records": list(records)}


_S3_SEQUENCER = iter(range(0x5F0000000000000000, 0x5FFFFFFFFFFFFFFFFF))


def s3_object_created_record(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    sequencer: str | None = None,
    version_id: str | None = None,
    event_name: str = "ObjectCreated:Put",
    configuration_id: str = "RecursiveProcessorNotification",
) -> dict[str, Any]:
    """One record of an S3 event notification (event version 2.1) as Lambda receives it.

    ``key`` is given as stored and URL-encoded the way S3 sends it (spaces as ``+``);
    ``etag`` is sent bare (no quotes), like S3 does. Each record gets a new, increasing
    ``sequencer`` unless one is given (S3 orders events on one key by it).
    """
    s3_object: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": etag.strip('"'),
        "sequencer": sequencer or f"{next(_S3_SEQUENCER):018X}",
    }
    if version_id is not None:
        s3_object["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2025-03-14T09:26:53.589Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAJQABLZS4A3QDU576Q"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {
            "x-amz-request-id": "D82B88E5F771F645",
            "x-amz-id-2": (
                "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo="
            ),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3I5XTEXAMAI3E"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": s3_object,
        },
    }


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    """An S3 event notification delivered to Lambda (one or several records)."""
    return {"Records": list(records)}


def dynamodb_stream_record_from_get_records(
    record: dict[str, Any], *, stream_arn: str
) -> dict[str, Any]:
    """Turn a record returned by ``dynamodbstreams.get_records`` into the Lambda shape.

    Lambda adds ``eventSourceARN`` and serializes ``ApproximateCreationDateTime`` as
    epoch seconds (boto3 parses it into a datetime).
    """
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if created is not None and hasattr(created, "timestamp"):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


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
