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

from tests.support.fakes import ACCOUNT_ID, REGION

CALLER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"


@dataclass
class HttpResponse:
    """An API Gateway proxy response, with header names lower-cased and the body parsed."""

    status: int
    headers: dict[str, str]
    body: Any

    @classmethod
    def from_proxy(cls, raw: dict[str, Any]) -> HttpResponse:
        headers = {name.lower(): value for name, value in (raw.get("headers") or {}).items()}
        for name, values in (raw.get("multiValueHeaders") or {}).items():
            headers.setdefault(name.lower(), ",".join(values))
        body = raw.get("body")
        return cls(
            status=raw["statusCode"], headers=headers, body=json.loads(body) if body else None
        )


def api_event(
    method: str,
    path: str,
    *,
    resource: str,
    body: str | None = None,
    is_base64_encoded: bool = False,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    user_arn: str | None = CALLER_ARN,
    stage: str = "api",
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event for an IAM-authorized call."""
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
    }
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
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
