"""A tiny stage with one REST API, for the API Gateway front door's conformance tests.

``ANY /{proxy+}`` runs ``app.route``, which answers by path: ``/echo`` returns what the
event carried, ``/shape/<shape>`` a proxy response of that shape, ``/big`` a 7 MB
response, ``/slow`` sleeps past the 300 ms integration timeout of ``GET /slow``.
``POST /validated`` checks the body against a JSON-schema model first (the model of
``application/json``), ``POST /anytype`` against the same model keyed ``$default`` (every
media type), as the patterns key theirs. ``POST /items`` runs ``app.route`` as another
function, which API Gateway may invoke for ``POST/items`` only (the permission CDK's
``LambdaIntegration`` grants). The API's gateway responses have the JSON shape the
patterns give theirs (``patterns/api.py``). Its one binary media type is
``application/octet-stream``.
"""

from __future__ import annotations

from typing import Any

from cfn_resources import (
    API_URL_OUTPUT,
    api_deployment,
    api_permission,
    api_resource,
    proxy_method,
    table_resource,
)
from tiny import table_function, table_role

HANDLER = """
import json
import time

SHAPES = {
    "no_status": {"body": "{}"},
    "status_string": {"statusCode": "201", "body": "{}"},
    "header_bool": {"statusCode": 200, "headers": {"X-Flag": True}, "body": "{}"},
    "status_word": {"statusCode": "OK", "body": "{}"},
    "status_bool": {"statusCode": True, "body": "{}"},
    "extra_field": {"statusCode": 200, "body": "{}", "cookies": ["a=b"]},
    "body_object": {"statusCode": 200, "body": {"a": 1}},
    "header_number": {"statusCode": 200, "headers": {"X-Count": 3}, "body": "{}"},
    "multi_header_string": {"statusCode": 200, "multiValueHeaders": {"X-A": "b"}, "body": "{}"},
    "base64_string": {"statusCode": 200, "isBase64Encoded": "yes", "body": "e30="},
    "not_an_object": "hello",
    "unserializable": {"statusCode": 200, "body": {1, 2}},
}


def route(event, context):
    path = event["path"]
    if path.startswith("/shape/"):
        shape = path.rsplit("/", 1)[-1]
        if shape == "raises":
            raise RuntimeError("boom")
        return SHAPES[shape]
    if path == "/big":
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    if path == "/slow":
        time.sleep(3)
    body = {
        "path": path,
        "resource": event["resource"],
        "requestPath": event["requestContext"]["path"],
        "headers": event["headers"],
        "multiValueHeaders": event["multiValueHeaders"],
        "query": event["queryStringParameters"],
        "multiQuery": event["multiValueQueryStringParameters"],
        "bodyLength": len(event["body"] or ""),
        "body": event["body"] if len(event["body"] or "") < 1000 else None,
        "isBase64Encoded": event["isBase64Encoded"],
    }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body)}


def big(event, context):
    return "x" * (7 * 1024 * 1024)
"""


def _gateway_response(response_type: str, code: str) -> dict[str, Any]:
    template = f'{{"error": "{code}", "message": $context.error.messageString}}'
    return {
        "Type": "AWS::ApiGateway::GatewayResponse",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "ResponseType": response_type,
            "ResponseTemplates": {"application/json": template},
        },
    }


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Table": table_resource(),
        **table_role(["dynamodb:GetItem"]),
        "Route": table_function("app.route"),
        "Big": table_function("app.big"),
        "Items": table_function("app.route"),
        # Reserved concurrency 0: Lambda refuses every invocation of it (throttled).
        "Throttled": {
            **(throttled := table_function("app.route")),
            "Properties": {**throttled["Properties"], "ReservedConcurrentExecutions": 0},
        },
        "Api": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {"Name": "tiny-api", "BinaryMediaTypes": ["application/octet-stream"]},
        },
        "Proxy": api_resource("{proxy+}"),
        "Slow": api_resource("slow"),
        "Validated": api_resource("validated"),
        "ItemsResource": api_resource("items"),
        "AnyType": api_resource("anytype"),
        "ThrottledResource": api_resource("throttled"),
        "Model": {
            "Type": "AWS::ApiGateway::Model",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ContentType": "application/json",
                "Schema": {
                    "$schema": "http://json-schema.org/draft-04/schema#",
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                },
            },
        },
        "Validator": {
            "Type": "AWS::ApiGateway::RequestValidator",
            "Properties": {"RestApiId": {"Ref": "Api"}, "ValidateRequestBody": True},
        },
        "AnyProxy": proxy_method("ANY", "Proxy", "Route"),
        "GetSlow": proxy_method("GET", "Slow", "Route", TimeoutInMillis=300),
        # The patterns' way: one model for every Content-Type (blocks/api.py).
        "PostAnyType": proxy_method(
            "POST",
            "AnyType",
            "Route",
            RequestValidatorId={"Ref": "Validator"},
            RequestModels={"$default": {"Ref": "Model"}},
        ),
        "PostValidated": proxy_method(
            "POST",
            "Validated",
            "Route",
            RequestValidatorId={"Ref": "Validator"},
            RequestModels={"application/json": {"Ref": "Model"}},
        ),
        "PostItems": proxy_method("POST", "ItemsResource", "Items"),
        "GetThrottled": proxy_method("GET", "ThrottledResource", "Throttled"),
        "BadRequestBody": _gateway_response("BAD_REQUEST_BODY", "invalid_request"),
        "UnsupportedMediaType": _gateway_response(
            "UNSUPPORTED_MEDIA_TYPE", "unsupported_media_type"
        ),
        "Default4xx": _gateway_response("DEFAULT_4XX", "client_error"),
        "Default5xx": _gateway_response("DEFAULT_5XX", "server_error"),
        **api_deployment(
            ["AnyProxy", "GetSlow", "PostValidated", "PostItems", "PostAnyType", "GetThrottled"]
        ),
        "Permission": api_permission("Route", "*/*"),
        "ItemsPermission": api_permission("Items", "POST/items"),
        "ThrottledPermission": api_permission("Throttled", "GET/throttled"),
    },
    "Outputs": {"ApiUrl": API_URL_OUTPUT},
}
