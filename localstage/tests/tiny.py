"""A tiny throwaway assembly, written by hand, for engine tests that need a running cloud."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cfn_resources import (
    API_URL_OUTPUT,
    ASSET,
    allow,
    api_deployment,
    api_permission,
    api_resource,
    arn,
    event_source_mapping,
    function_resource,
    policy_resource,
    proxy_method,
    queue_resource,
    redriven_queue,
    ref_outputs,
    role_resource,
    table_resource,
)

from localstage.stage import LocalStage

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


def table_function(
    handler: str, role: str = "Role", timeout: int = 5, layers: list[Any] | None = None
) -> dict[str, Any]:
    """A function running ``handler`` as ``role`` (once its policy exists), given the
    table's name as ``TABLE_NAME``."""
    return function_resource(
        handler,
        role,
        timeout=timeout,
        environment={"TABLE_NAME": {"Ref": "Table"}},
        depends_on=[f"{role}Policy"],
        extra={"Layers": layers} if layers else None,
    )


def table_role(
    actions: list[str], name: str = "Role", queue_actions: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """A Lambda role ``name`` allowed ``actions`` on ``Table`` (and ``queue_actions`` on
    ``WorkQueue``), with its policy ``<name>Policy``."""
    statements = [allow(actions, arn("Table"))]
    if queue_actions:
        statements.append(allow(queue_actions, arn("WorkQueue")))
    return {
        name: role_resource(),
        f"{name}Policy": policy_resource(f"{name}Policy", name, statements),
    }


# GET /items/{id} may invoke Http; POST /items/{id} has no Lambda permission.
API: dict[str, Any] = {
    "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "tiny"}},
    "Items": api_resource("items"),
    "Item": api_resource("{id}", parent="Items"),
    "GetItem": proxy_method("GET", "Item", "Http"),
    "PostItem": proxy_method("POST", "Item", "Http"),
    **api_deployment(["GetItem", "PostItem"]),
    "GetPermission": api_permission("Http", "GET/items/*"),
}

TEMPLATE = {
    "Resources": {
        "Table": table_resource(),
        # A queue meant to feed Writer, but the template has no event source mapping.
        "Queue": queue_resource(VisibilityTimeout=30),
        **table_role(["dynamodb:GetItem"]),
        "Writer": table_function("app.handler", "Role"),
        "Reader": table_function("app.read", "Role"),
        "Counter": table_function("app.count", "Role"),
        "Sleeper": table_function("app.sleepy", "Role", timeout=1),
        "Unserializable": table_function("app.unserializable", "Role"),
        "Http": table_function("app.http", "Role"),
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
        "Layered": table_function(
            "app.layered",
            "Role",
            layers=[
                {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:017000801446:layer:x:1"},
                {"Ref": "SharedLayer"},
            ],
        ),
        # A queue with a DLQ after two receives, consumed with partial batch responses.
        "DeadLetters": queue_resource(),
        "WorkQueue": redriven_queue("DeadLetters"),
        **table_role(
            ["dynamodb:PutItem"],
            name="BatchRole",
            queue_actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        ),
        "Batcher": table_function("app.batch", "BatchRole"),
        "Mapping": event_source_mapping(
            "Batcher",
            arn("WorkQueue"),
            BatchSize=10,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": 2},
        ),
        **API,
    },
    "Outputs": {
        **ref_outputs(
            names=("Table",), urls=("Queue", "WorkQueue"), DeadLetterQueueUrl="DeadLetters"
        ),
        "ApiUrl": API_URL_OUTPUT,
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


@contextmanager
def booted(
    root: Path,
    template: dict[str, Any],
    code: str,
    *,
    clock_speed: float = 1.0,
    delivery: str | None = None,
    contention: str | None = None,
) -> Iterator[LocalStage]:
    """Stage ``test`` of ``template`` (running ``code``), written and booted in ``root``
    and stopped on exit: what every tiny stage fixture does."""
    assembly = write_assembly(root / "assembly-test", template, code)
    with LocalStage(
        stage_name="test",
        assembly_dir=assembly,
        workdir=root / "work",
        clock_speed=clock_speed,
        delivery=delivery,
        contention=contention,
    ) as stage:
        yield stage
