"""A tiny throwaway assembly, written by hand, for engine tests that need a running cloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ASSET = "0123456789abcdef"
LAYER_ASSET = "fedcba9876543210"
# The layer's python/ folder: a module of its own, and an app.py the code root shadows.
LAYER_FILES = {
    "python/tinykit.py": 'ORIGIN = "layer"\n',
    "python/app.py": "raise ImportError('the code root must come first')\n",
}

# Writes the item it is given: the role below may only read the table.
HANDLER = """
import os
import boto3

table = boto3.client("dynamodb")


def handler(event, context):
    table.put_item(TableName=os.environ["TABLE_NAME"], Item={"pk": {"S": event["pk"]}})
    return {"stored": event["pk"], "remaining_ms": context.get_remaining_time_in_millis()}


def read(event, context):
    item = table.get_item(TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": event["pk"]}})
    return {"found": "Item" in item, "function": context.function_name}


invocations = 0


def count(event, context):
    global invocations
    invocations += 1
    return {"count": invocations, "environment": sorted(os.environ)}


def sleepy(event, context):
    import time

    time.sleep(5)
    return "woke up"


def batch(event, context):
    failures = []
    for record in event["Records"]:
        if record["body"] == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
        else:
            table.put_item(TableName=os.environ["TABLE_NAME"], Item={"pk": {"S": record["body"]}})
    return {"batchItemFailures": failures}


def unserializable(event, context):
    return {"ids": {1, 2}}


def layered(event, context):
    import tinykit

    return {"kit": tinykit.ORIGIN, "app": __file__}


def http(event, context):
    import json

    body = {
        "path": event["path"],
        "parameters": event["pathParameters"],
        "caller": event["requestContext"]["identity"]["userArn"],
    }
    return {"statusCode": 200, "headers": {"X-Handled": "yes"}, "body": json.dumps(body)}
"""


def function_resource(
    handler: str,
    role: str,
    *,
    timeout: int,
    environment: dict[str, Any],
    code: dict[str, Any] | None = None,
    depends_on: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``AWS::Lambda::Function`` on Python 3.14 running ``handler`` as ``role``.

    ``code`` defaults to the asset :data:`ASSET` in the account's asset bucket;
    ``extra`` adds properties (layers, destinations, ...).
    """
    resource: dict[str, Any] = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.14",
            "Handler": handler,
            "Timeout": timeout,
            "Code": code
            or {"S3Bucket": {"Fn::Sub": "assets-${AWS::AccountId}"}, "S3Key": f"{ASSET}.zip"},
            "Role": {"Fn::GetAtt": [role, "Arn"]},
            "Environment": {"Variables": environment},
            **(extra or {}),
        },
    }
    if depends_on:
        resource["DependsOn"] = depends_on
    return resource


def _function(
    handler: str, role: str, timeout: int = 5, layers: list[Any] | None = None
) -> dict[str, Any]:
    return function_resource(
        handler,
        role,
        timeout=timeout,
        environment={"TABLE_NAME": {"Ref": "Table"}},
        depends_on=[f"{role}Policy"],
        extra={"Layers": layers} if layers else None,
    )


def role_resource(service: str = "lambda.amazonaws.com") -> dict[str, Any]:
    """An ``AWS::IAM::Role`` that ``service`` may assume (its policies are separate)."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": service},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        },
    }


def _role(
    actions: list[str], name: str = "Role", queue_actions: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": actions, "Resource": {"Fn::GetAtt": ["Table", "Arn"]}}
    ]
    if queue_actions:
        statements.append(
            {
                "Effect": "Allow",
                "Action": queue_actions,
                "Resource": {"Fn::GetAtt": ["WorkQueue", "Arn"]},
            }
        )
    return {
        name: role_resource(),
        f"{name}Policy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": f"{name}Policy",
                "Roles": [{"Ref": name}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            },
        },
    }


def _method(http_method: str, resource: str, function: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "ResourceId": {"Ref": resource},
            "HttpMethod": http_method,
            "AuthorizationType": "AWS_IAM",
            "Integration": {
                "Type": "AWS_PROXY",
                "IntegrationHttpMethod": "POST",
                "Uri": {
                    "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/"
                    f"2015-03-31/functions/${{{function}.Arn}}/invocations"
                },
            },
        },
    }


# GET /items/{id} may invoke Http; POST /items/{id} has no Lambda permission.
API: dict[str, Any] = {
    "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "tiny"}},
    "Items": {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
            "PathPart": "items",
        },
    },
    "Item": {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "ParentId": {"Ref": "Items"},
            "PathPart": "{id}",
        },
    },
    "GetItem": _method("GET", "Item", "Http"),
    "PostItem": _method("POST", "Item", "Http"),
    "Deployment": {
        "Type": "AWS::ApiGateway::Deployment",
        "Properties": {"RestApiId": {"Ref": "Api"}},
        "DependsOn": ["GetItem", "PostItem"],
    },
    "Stage": {
        "Type": "AWS::ApiGateway::Stage",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "DeploymentId": {"Ref": "Deployment"},
            "StageName": "test",
        },
    },
    "GetPermission": {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": ["Http", "Arn"]},
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                "${Api}/${Stage}/GET/items/*"
            },
        },
    },
}

TEMPLATE = {
    "Resources": {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
        # A queue meant to feed Writer, but the template has no event source mapping.
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}},
        **_role(["dynamodb:GetItem"]),
        "Writer": _function("app.handler", "Role"),
        "Reader": _function("app.read", "Role"),
        "Counter": _function("app.count", "Role"),
        "Sleeper": _function("app.sleepy", "Role", timeout=1),
        "Unserializable": _function("app.unserializable", "Role"),
        "Http": _function("app.http", "Role"),
        # A layer built from an asset of the assembly, after an external (virtualenv) one.
        "SharedLayer": {
            "Type": "AWS::Lambda::LayerVersion",
            "Properties": {
                "Content": {
                    "S3Bucket": {"Fn::Sub": "assets-${AWS::AccountId}"},
                    "S3Key": f"{LAYER_ASSET}.zip",
                },
                "CompatibleRuntimes": ["python3.14"],
            },
        },
        "Layered": _function(
            "app.layered",
            "Role",
            layers=[
                {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:017000801446:layer:x:1"},
                {"Ref": "SharedLayer"},
            ],
        ),
        # A queue with a DLQ after two receives, consumed with partial batch responses.
        "DeadLetters": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "WorkQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "VisibilityTimeout": 30,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
                    "maxReceiveCount": 2,
                },
            },
        },
        **_role(
            ["dynamodb:PutItem"],
            name="BatchRole",
            queue_actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        ),
        "Batcher": _function("app.batch", "BatchRole"),
        "Mapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "FunctionName": {"Ref": "Batcher"},
                "EventSourceArn": {"Fn::GetAtt": ["WorkQueue", "Arn"]},
                "BatchSize": 10,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": 2},
            },
        },
        **API,
    },
    "Outputs": {
        "TableName": {"Value": {"Ref": "Table"}},
        "QueueUrl": {"Value": {"Ref": "Queue"}},
        "WorkQueueUrl": {"Value": {"Ref": "WorkQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetters"}},
        "ApiUrl": {
            "Value": {
                "Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}/"
            }
        },
    },
}


def write_assembly(directory: Path, template: dict[str, Any], code: str) -> Path:
    """A minimal cloud assembly: one stack ``test-Tiny``, one code and one layer asset."""
    (directory / f"asset.{ASSET}").mkdir(parents=True)
    (directory / f"asset.{ASSET}" / "app.py").write_text(code)
    for name, text in LAYER_FILES.items():
        (directory / f"asset.{LAYER_ASSET}" / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / f"asset.{LAYER_ASSET}" / name).write_text(text)
    (directory / "Tiny.template.json").write_text(json.dumps(template))
    files = {
        asset: {"source": {"path": f"asset.{asset}", "packaging": "zip"}}
        for asset in (ASSET, LAYER_ASSET)
    }
    (directory / "Tiny.assets.json").write_text(json.dumps({"files": files}))
    manifest = {
        "version": "55.0.0",
        "artifacts": {
            "Tiny.assets": {
                "type": "cdk:asset-manifest",
                "properties": {"file": "Tiny.assets.json"},
            },
            "Tiny": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "Tiny.template.json", "stackName": "test-Tiny"},
                "dependencies": ["Tiny.assets"],
                "displayName": "test/Tiny",
            },
        },
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory
