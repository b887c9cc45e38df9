"""The events AWS services deliver to functions, built in their real shapes.

Each builder's output validates against the matching Powertools parser model
(``tests/localstage/test_events.py`` checks it).
"""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from localstage.cloud import ACCOUNT_ID, REGION

#: Message system attributes Lambda copies into an SQS record.
SQS_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of an SQS event from a ``ReceiveMessage`` message (All attributes)."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {
            name: attributes[name] for name in SQS_RECORD_ATTRIBUTES if name in attributes
        },
        "messageAttributes": {
            name: _sqs_message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(message.get("Body", "").encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _sqs_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        attribute["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
    return attribute


def api_identity(
    *, access_key: str | None, principal_arn: str | None, source_ip: str, user_agent: str | None
) -> dict[str, Any]:
    """``requestContext.identity`` of a REST API request (IAM-signed if ``access_key``)."""
    caller = user = None
    if principal_arn:
        if ":assumed-role/" in principal_arn:
            role, session = principal_arn.split(":assumed-role/", 1)[1].split("/", 1)
            caller = user = f"AROA{_stable_id(role)}:{session}"
        else:
            caller = user = f"AIDA{_stable_id(principal_arn)}"
    return {
        "cognitoIdentityPoolId": None,
        "accountId": ACCOUNT_ID if access_key else None,
        "cognitoIdentityId": None,
        "caller": caller,
        "sourceIp": source_ip,
        "principalOrgId": None,
        "accessKey": access_key,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": principal_arn,
        "userAgent": user_agent,
        "user": user,
    }


def _stable_id(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:17].upper()


def api_gateway_event(
    *,
    api_id: str,
    stage: str,
    resource_id: str,
    resource_path: str,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    query: list[tuple[str, str]],
    path_parameters: dict[str, str],
    stage_variables: dict[str, str] | None,
    body: bytes,
    binary: bool,
    identity: dict[str, Any],
    request_id: str | None = None,
) -> dict[str, Any]:
    """A REST API (v1) Lambda proxy integration event."""
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    single_query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        single_query[name] = value
        multi_query.setdefault(name, []).append(value)
    now = time.time()
    if not body:
        event_body: str | None = None
    elif binary:
        event_body = base64.b64encode(body).decode()
    else:
        event_body = body.decode("utf-8", errors="replace")
    domain = f"{api_id}.execute-api.{REGION}.amazonaws.com"
    return {
        "resource": resource_path,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": stage_variables or None,
        "requestContext": {
            "resourceId": resource_id,
            "resourcePath": resource_path,
            "httpMethod": method,
            "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode(),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": api_id,
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id or str(uuid.uuid4()),
            "identity": identity,
            "domainName": domain,
            "apiId": api_id,
        },
        "body": event_body,
        "isBase64Encoded": bool(event_body) and binary,
    }


def dynamodb_stream_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One record of a DynamoDB stream event from a ``GetRecords`` record (boto3 client)."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    for image in ("Keys", "NewImage", "OldImage"):
        if image in stream:
            stream[image] = {name: _wire_value(value) for name, value in stream[image].items()}
    event: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": stream,
        "eventSourceARN": stream_arn,
    }
    if record.get("userIdentity"):
        event["userIdentity"] = record["userIdentity"]
    return event


def _wire_value(value: Any) -> Any:
    """An attribute value as it travels in JSON (binary as base64 text)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: _wire_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire_value(item) for item in value]
    return value


def s3_notification_record(
    *,
    event_name: str,
    bucket: str,
    key: str,
    size: int | None = None,
    etag: str | None = None,
    version_id: str | None = None,
    sequencer: str | None = None,
    configuration_id: str = "localstage",
    principal_id: str = "AWS:AIDALOCALSTAGE",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """One record of an S3 event notification (``ObjectCreated:Put`` and the like).

    ``key`` is given as stored and URL-encoded the way S3 sends it (spaces as ``+``);
    ``etag`` is sent bare (no quotes), like S3 does. ``sequencer`` (hex, increasing
    over the events of one key: S3 orders them by it) comes from the clock unless given.
    """
    obj: dict[str, Any] = {
        "key": urllib.parse.quote_plus(key, safe="/"),
        "sequencer": sequencer or f"{time.time_ns():016X}",
    }
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag.strip('"')
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventName": event_name,
        "userIdentity": {"principalId": principal_id},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {
            "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
            "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes * 2).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }
