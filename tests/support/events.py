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
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from localstage.events import s3_notification_record

from tests.support.fakes import ACCOUNT_ID, REGION
from tests.support.scheduler_events import (  # noqa: F401  (re-exported)
    SCHEDULER_CONTEXT_ATTRIBUTES,
    lambda_destination_record,
    lambda_error_payload,
    lambda_function_arn,
    schedule_arn,
    scheduler_target_input,
)

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
    headers: dict[str, str | None] | None = None,
    multi_value_headers: dict[str, list[str]] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    multi_value_query: dict[str, list[str]] | None = None,
    user_arn: str | None = CALLER_ARN,
    stage: str = "api",
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event for an IAM-authorized call.

    A dict ``body`` is JSON-encoded; ``base64_body`` base64-encodes the body as API
    Gateway does for binary media types (``is_base64_encoded`` marks a body already
    encoded by the caller). ``multi_value_headers`` are headers sent more than once:
    as on AWS, ``multiValueHeaders`` carries every value and ``headers`` the last;
    ``multi_value_query`` does the same for query string parameters. A header of
    ``headers`` set to None is not sent (``{"Content-Type": None}``: a body without one).
    """
    is_base64_encoded = is_base64_encoded or (base64_body and body is not None)
    body = request_body(body, base64_body=base64_body)
    every_header = {
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
    all_headers = {name: value for name, value in every_header.items() if value is not None}
    all_multi_value_headers = {name: [value] for name, value in all_headers.items()}
    all_multi_value_headers.update(multi_value_headers or {})
    all_query = {**(query or {}), **{n: v[-1] for n, v in (multi_value_query or {}).items()}}
    all_multi_value_query = {name: [value] for name, value in all_query.items()}
    all_multi_value_query.update(multi_value_query or {})
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": all_multi_value_headers,
        "queryStringParameters": all_query or None,
        "multiValueQueryStringParameters": all_multi_value_query or None,
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


def post_jobs_event(
    body: str | dict[str, Any] | None, *, stage: str, **options: Any
) -> dict[str, Any]:
    """``POST /jobs`` on ``stage``; ``options`` (headers, ``user_arn``, ``base64_body``...)
    as :func:`api_event` takes them."""
    return api_event("POST", "/jobs", resource="/jobs", body=body, stage=stage, **options)


def get_job_event(job_id: str, *, stage: str) -> dict[str, Any]:
    """``GET /jobs/{job_id}`` on ``stage``."""
    return api_event(
        "GET",
        f"/jobs/{job_id}",
        resource="/jobs/{job_id}",
        path_parameters={"job_id": job_id},
        stage=stage,
    )


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
    bucket: str, key: str, *, size: int, etag: str, **fields: Any
) -> dict[str, Any]:
    """One record of an S3 event notification (event version 2.1) as Lambda receives it.

    The record localstage delivers (:func:`localstage.events.s3_notification_record`,
    which takes the other ``fields``: ``event_name``, ``version_id``, ``sequencer``...),
    for the recursive processor's notification. Each record gets a new, increasing
    ``sequencer`` unless one is given (S3 orders events on one key by it).
    """
    fields.setdefault("event_name", "ObjectCreated:Put")
    fields.setdefault("configuration_id", "RecursiveProcessorNotification")
    if fields.get("sequencer") is None:
        fields["sequencer"] = f"{next(_S3_SEQUENCER):018X}"
    return s3_notification_record(bucket=bucket, key=key, size=size, etag=etag, **fields)


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
