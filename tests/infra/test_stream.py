"""blocks.stream: what a stream consumer is granted, on a scratch stack."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk.assertions import Template

from blocks.function import Invocation, ServiceFunction
from blocks.stage_settings import StageSettings
from blocks.stream import grant_stream_read
from tests.infra.templates import of_type

ROOT = Path(__file__).resolve().parents[2]


def test_a_consumer_of_two_streams_lists_streams_through_one_policy() -> None:
    # GIVEN one function that reads the streams of two tables
    stack = cdk.Stack(cdk.App(), "Scratch")
    settings = StageSettings(app_name="serverless-patterns", stage_name="scratch", persistent=False)
    consumer = ServiceFunction(
        stack,
        "Consumer",
        settings=settings,
        code=ROOT / "patterns" / "fan_out_fan_in" / "runtime",
        handler="fan_out_reducer.handler",
        description="reads two streams",
        timeout=cdk.Duration.seconds(10),
        invocation=Invocation.SYNCHRONOUS,
    )
    tables = [
        dynamodb.TableV2(
            stack,
            name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            dynamo_stream=dynamodb.StreamViewType.NEW_IMAGE,
        )
        for name in ("First", "Second")
    ]

    # WHEN each stream's read is granted to it (the second grant used to stop the synth:
    # "There is already a Construct with name 'StreamListing'")
    for table in tables:
        grant_stream_read(table, consumer)

    # THEN it may read both streams, and one policy grants dynamodb:ListStreams on "*"
    resources = Template.from_stack(stack).to_json()["Resources"]
    statements = [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    listing = [s for s in statements if s["Action"] == "dynamodb:ListStreams"]
    assert listing == [{"Action": "dynamodb:ListStreams", "Effect": "Allow", "Resource": "*"}]
    reads = json.dumps([s for s in statements if "dynamodb:GetRecords" in s["Action"]])
    for logical_id in of_type(resources, "AWS::DynamoDB::GlobalTable"):
        assert logical_id in reads
