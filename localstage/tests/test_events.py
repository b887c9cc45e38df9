"""Events localstage builds have the shapes Powertools' parser models describe."""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    DynamoDBStreamModel,
    S3Model,
    SqsModel,
)

from localstage.events import (
    api_gateway_event,
    api_identity,
    dynamodb_stream_record,
    s3_notification_record,
    sqs_record,
)

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:local-Jobs-TaskQueue-ABC"


def test_sqs_events_validate_against_the_sqs_model() -> None:
    # GIVEN a message as ReceiveMessage returns it, with a message attribute
    message = {
        "MessageId": "4d1a6e1c-6b1e-4bb4-9d5e-1d2a2c0c7d10",
        "ReceiptHandle": "AQEB-receipt",
        "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "Body": "{}",
        "Attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1741944413589",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1741944413600",
        },
        "MD5OfMessageAttributes": "d25a6aea97eb8f585bfa92d314504a92",
        "MessageAttributes": {"correlation_id": {"StringValue": "abc", "DataType": "String"}},
    }

    # WHEN the SQS mapping turns it into an event
    event = {"Records": [sqs_record(message, QUEUE_ARN)]}

    # THEN Powertools parses it with the values carried over
    parsed = SqsModel.model_validate(event)
    record = parsed.Records[0]
    assert record.messageId == message["MessageId"]
    assert record.attributes.ApproximateReceiveCount == "2"
    assert record.messageAttributes["correlation_id"].stringValue == "abc"
    assert record.awsRegion == "us-east-1"


def test_api_gateway_events_validate_against_the_rest_proxy_model() -> None:
    # GIVEN an IAM-signed request with a path parameter, a query string and a body
    identity = api_identity(
        access_key="AKIAEXAMPLE",
        principal_arn="arn:aws:iam::123456789012:user/localstage-admin",
        source_ip="127.0.0.1",
        user_agent="test",
    )

    # WHEN the gateway builds the proxy event
    event = api_gateway_event(
        api_id="abc123defg",
        stage="api",
        resource_id="r1",
        resource_path="/jobs/{job_id}",
        method="GET",
        path="/jobs/42",
        headers=[("Accept", "application/json"), ("X-Multi", "a"), ("X-Multi", "b")],
        query=[("page", "1"), ("tag", "x"), ("tag", "y")],
        path_parameters={"job_id": "42"},
        stage_variables=None,
        body=b"\x00\x01",
        binary=True,
        identity=identity,
    )

    # THEN Powertools parses it, with multi-value headers and base64 body kept
    parsed = APIGatewayProxyEventModel.model_validate(event)
    assert parsed.pathParameters == {"job_id": "42"}
    assert parsed.multiValueQueryStringParameters == {"page": ["1"], "tag": ["x", "y"]}
    assert parsed.multiValueHeaders["X-Multi"] == ["a", "b"]
    assert parsed.isBase64Encoded is True
    assert parsed.requestContext.identity.userArn == identity["userArn"]
    assert parsed.requestContext.path == "/api/jobs/42"


def test_dynamodb_stream_events_validate_against_the_stream_model() -> None:
    # GIVEN a record as GetRecords returns it (datetime, binary attribute)
    record = {
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC),
            "Keys": {"pk": {"S": "account-1"}},
            "NewImage": {"pk": {"S": "account-1"}, "blob": {"B": b"\x00\x01"}, "n": {"N": "2"}},
            "OldImage": {"pk": {"S": "account-1"}, "n": {"N": "1"}},
            "SequenceNumber": "111",
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    stream_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2025-03-14T09:26:53.000"

    # WHEN a stream mapping turns it into an event
    event = {"Records": [dynamodb_stream_record(record, stream_arn)]}

    # THEN Powertools parses it, images deserialized
    parsed = DynamoDBStreamModel.model_validate(event)
    assert parsed.Records[0].eventSourceARN == stream_arn
    new_image = parsed.Records[0].dynamodb.NewImage
    assert isinstance(new_image, dict)
    assert new_image["n"] == 2
    assert new_image["blob"] == "AAE="  # base64, as AWS sends it


def test_s3_events_validate_against_the_s3_model() -> None:
    # WHEN an object with a space in its key is put
    record = s3_notification_record(
        event_name="ObjectCreated:Put",
        bucket="input",
        key="incoming/a b.ndjson",
        size=5,
        etag='"abc"',
    )

    # THEN Powertools parses the event; the key is URL-encoded as S3 sends it
    parsed = S3Model.model_validate({"Records": [record]})
    s3_object = parsed.Records[0].s3.object
    assert s3_object is not None
    assert s3_object.key == "incoming/a+b.ndjson"
    assert s3_object.size == 5
    assert parsed.Records[0].s3.bucket.name == "input"
