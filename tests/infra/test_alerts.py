"""The stage's alarm topic: who gets the alarms."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from blocks.stage_settings import InvalidStageNameError, StageSettings
from stacks.alerts import AlertsStack
from stacks.stage import cdk_json_context
from tests.infra.conftest import SynthesizedStage
from tests.infra.templates import of_type

NOBODY = "nobody gets its alarms"


def _settings(**overrides: object) -> StageSettings:
    values: dict[str, object] = {
        "app_name": "serverless-patterns",
        "stage_name": "prod",
        "persistent": True,
        **overrides,
    }
    return StageSettings(**values)  # type: ignore[arg-type]


def test_the_stages_subscribers_are_subscribed_to_its_alarm_topic() -> None:
    # GIVEN a stage whose cdk.json names an on-call address and a chat webhook
    context = {
        **cdk_json_context(),
        "alarm_subscriptions": {"prod": ["oncall@example.org", "https://hooks.example.org/alarms"]},
    }
    settings = StageSettings.from_context(context, stage_name="prod")

    # WHEN its Alerts stack is built
    stack = AlertsStack(cdk.App(), settings=settings)
    resources = Template.from_stack(stack).to_json()["Resources"]

    # THEN each gets the topic's notifications, by its protocol, and no warning is left
    subscribed = {
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"])
        for s in of_type(resources, "AWS::SNS::Subscription").values()
    }
    assert subscribed == {
        ("email", "oncall@example.org"),
        ("https", "https://hooks.example.org/alarms"),
    }
    warnings = [m for m in stack.node.metadata if m.type == "aws:cdk:warning"]
    assert warnings == []


def test_a_persistent_stage_nobody_gets_the_alarms_of_is_warned_at_synth(
    persistent: SynthesizedStage, ephemeral: SynthesizedStage
) -> None:
    # GIVEN cdk.json as shipped (no subscribers) WHEN both stage kinds are synthesized
    # THEN the persistent one warns that its alarms reach nobody; an ephemeral one does not
    def warnings(stage: SynthesizedStage) -> list[str]:
        nested = stage.outdir / f"assembly-{stage.name}"
        manifest = json.loads((nested / "manifest.json").read_text())
        (alerts,) = [
            a
            for a in manifest["artifacts"].values()
            if a.get("displayName", "").endswith("/Alerts")
        ]
        metadata = json.loads((nested / alerts["additionalMetadataFile"]).read_text())
        return [
            str(entry["data"])
            for entries in metadata.values()
            for entry in entries
            if entry["type"] == "aws:cdk:warning"
        ]

    assert any(NOBODY in warning for warning in warnings(persistent))
    assert not any(NOBODY in warning for warning in warnings(ephemeral))


@pytest.mark.parametrize(
    "subscriber", ["http://hooks.example.org/alarms", "oncall", "on call@example.org", ""]
)
def test_a_subscriber_that_is_neither_an_email_address_nor_https_is_refused(
    subscriber: str,
) -> None:
    with pytest.raises(InvalidStageNameError, match=r"alarm_subscriptions\.prod"):
        _settings(alarm_subscribers=(subscriber,))


def _alarmed_dimension_values(resources: dict[str, Any], metric_name: str) -> list[Any]:
    """The dimension values of the alarms on ``metric_name``, whether an alarm names its
    metric or holds it in ``Metrics`` (cdk-monitoring-constructs does both)."""
    metrics = []
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        metrics.append(properties)
        metrics += [
            m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m
        ]
    return [
        dimension["Value"]
        for metric in metrics
        if metric.get("MetricName") == metric_name
        for dimension in metric.get("Dimensions", [])
    ]


def test_a_failed_event_lambda_cannot_deliver_to_its_destination_alarms(
    any_stage: SynthesizedStage,
) -> None:
    # GIVEN every function of the stage whose failed events go to a destination: async
    # invocations (EventInvokeConfig) and stream mappings (DestinationConfig)
    for stack in any_stage.stage.pattern_stacks.values():
        resources = any_stage.template_json(stack.node.id)["Resources"]
        with_destination = {
            config["Properties"]["FunctionName"]["Ref"]
            for config in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
            if "OnFailure" in config["Properties"].get("DestinationConfig", {})
        } | {
            mapping["Properties"]["FunctionName"]["Ref"]
            for mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
            if "OnFailure" in mapping["Properties"].get("DestinationConfig", {})
        }

        # THEN each has an alarm on Lambda's DestinationDeliveryFailures: an event it
        # could not deliver is dropped, and the destination's own alarm never sees it
        alarmed = _alarmed_dimension_values(resources, "DestinationDeliveryFailures")
        assert sorted(with_destination) == sorted(value["Ref"] for value in alarmed), stack


def test_every_stream_consumer_alarms_when_it_falls_behind(any_stage: SynthesizedStage) -> None:
    # GIVEN every function a DynamoDB stream mapping feeds
    for stack in any_stage.stage.pattern_stacks.values():
        resources = any_stage.template_json(stack.node.id)["Resources"]
        consumers = sorted(
            mapping["Properties"]["FunctionName"]["Ref"]
            for mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
            if "StartingPosition" in mapping["Properties"]
        )
        # THEN each has an iterator age alarm (a stuck shard is no error)
        alarmed = sorted(
            value["Ref"] for value in _alarmed_dimension_values(resources, "IteratorAge")
        )
        assert consumers == alarmed, stack
