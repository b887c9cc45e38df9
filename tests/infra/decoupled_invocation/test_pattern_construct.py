"""blocks.pattern_construct: what every pattern's construct shares (its API's limits)."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from blocks.pattern_construct import ApiThrottling, PatternConstruct
from blocks.stage_settings import StageSettings

PATTERN_DIR = Path(__file__).resolve().parents[3] / "patterns" / "decoupled_invocation"
RUNTIME_DIR = PATTERN_DIR / "runtime"
#: Its API document routes POST /jobs and GET /jobs/{job_id}: what _route adds.
OPENAPI = PATTERN_DIR / "openapi.json"


def _pattern() -> PatternConstruct:
    stack = cdk.Stack(cdk.App(), "Scratch")
    stage = StageSettings(app_name="serverless-patterns", stage_name="scratch", persistent=False)
    return PatternConstruct(stack, "Pattern", settings=stage, code=RUNTIME_DIR)


def _route(pattern: PatternConstruct) -> None:
    function = pattern.make_function.api_function(
        "ScratchApi",
        handler="job_api.handler",
        description="scratch",
        table=cdk.aws_dynamodb.Table(
            pattern,
            "Table",
            partition_key=cdk.aws_dynamodb.Attribute(
                name="id", type=cdk.aws_dynamodb.AttributeType.STRING
            ),
        ),
        table_actions=("dynamodb:GetItem",),
        environment={},
    )
    pattern.api.add_collection("jobs", function.function, id_name="job_id")


def test_add_api_gives_the_write_methods_the_write_limits() -> None:
    # GIVEN limits with lower write limits WHEN the API is added with one write method
    pattern = _pattern()
    throttling = ApiThrottling(
        rate_limit=30, burst_limit=60, write_rate_limit=3, write_burst_limit=6
    )
    pattern.add_api("Scratch jobs", throttling, openapi=OPENAPI, write_methods=["/jobs/POST"])
    _route(pattern)

    # THEN the stage has the stage-wide limits and the write method its own
    stage = Template.from_stack(cdk.Stack.of(pattern)).find_resources("AWS::ApiGateway::Stage")
    (settings,) = [resource["Properties"]["MethodSettings"] for resource in stage.values()]
    limits = {
        (s["HttpMethod"], s["ResourcePath"]): (s["ThrottlingRateLimit"], s["ThrottlingBurstLimit"])
        for s in settings
    }
    assert limits[("*", "/*")] == (30, 60)
    assert limits[("POST", "/~1jobs")] == (3, 6)


def test_add_api_refuses_write_methods_without_write_limits() -> None:
    # GIVEN limits without write limits WHEN write methods are named THEN it is refused
    with pytest.raises(ValueError, match="write limits"):
        _pattern().add_api(
            "Scratch jobs", ApiThrottling(), openapi=OPENAPI, write_methods=["/jobs/POST"]
        )
