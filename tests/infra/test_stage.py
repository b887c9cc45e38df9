"""The stage: names, isolation between stages, tags, and what each stage kind keeps."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from localstage.intrinsics import resolve

from blocks.function import POWERTOOLS_LAYER_PUBLISHERS, POWERTOOLS_LAYER_VERSION
from stacks.pattern_stack import PatternStack
from stacks.stage import cdk_json_context, pattern_stack_classes
from tests.infra.conftest import SynthesizedStage
from tests.infra.templates import (
    EXPIRING_TABLE_PROPERTIES,
    TemplateContext,
    all_policy_statements,
    as_list,
    assert_no_wildcard_actions,
    assert_resourceless_actions_only_on_star,
    of_type,
    policy_statements,
)
from tests.support.iam_patterns import iam_matches

ROOT = Path(__file__).resolve().parents[2]

# Properties that give a resource a physical name.
NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::ApiGateway::RestApi": "Name",
}
# Names AWS requires to be unique in an account and region; the app may set only these,
# and then only with the stage in them.
# (An EventBridge bus cannot be created without a name; REST API names need not be
# unique, and carry the stage only so the console shows whose API it is.)
STAGE_SCOPED_NAMES = {
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::Events::EventBus",
    "AWS::ApiGateway::RestApi",
}
# Names AWS keeps once per account, not per region: they carry the region too, so one
# stage deployed in two regions shares none ("All dashboards in your account are global,
# not region-specific", AWS::CloudWatch::Dashboard in the CloudFormation reference).
ACCOUNT_WIDE_NAMES = {"AWS::CloudWatch::Dashboard"}
TAGGABLE = {
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::Lambda::Function",
    "AWS::IAM::Role",
    "AWS::Logs::LogGroup",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Stage",
    "AWS::Lambda::EventSourceMapping",
    "AWS::S3::Bucket",
}
STATEFUL = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::S3::Bucket"}


def resources(stage: SynthesizedStage) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack_id, logical_id, resource)
        for stack_id in stage.templates
        for logical_id, resource in stage.template_json(stack_id)["Resources"].items()
    ]


def test_stacks_are_named_after_the_stage(any_stage: SynthesizedStage) -> None:
    names = sorted(stack.stack_name for stack in any_stage.stage.pattern_stacks.values())
    assert names and all(name.startswith(f"{any_stage.name}-") for name in names)
    assert names == sorted(
        f"{any_stage.name}-{cls.pattern_name}" for cls in pattern_stack_classes()
    )
    assert any_stage.stage.alerts.stack_name == f"{any_stage.name}-Alerts"


@pytest.mark.parametrize("name", ["orders", "1Orders", "Order-Intake", ""])
def test_a_pattern_name_the_alarm_topic_would_not_admit_is_refused(name: str) -> None:
    # GIVEN a pattern stack named without a leading capital letter (its alarms would be
    # "<stage>-orders-...", which the stage's alarm topic does not let publish)
    # WHEN its class is defined THEN it is refused, and not registered with the stage
    before = list(PatternStack.registry)
    with pytest.raises(TypeError, match="starting with a capital letter"):
        type("Misnamed", (PatternStack,), {"pattern_name": name})
    assert PatternStack.registry == before
    assert all(cls.pattern_name[0] in string.ascii_uppercase for cls in pattern_stack_classes())


def test_every_stack_carries_the_app_and_stage_tags_teardown_finds_it_by(
    ephemeral: SynthesizedStage,
) -> None:
    # GIVEN the stage's cloud assembly, what the CLI deploys from
    nested = ephemeral.outdir / f"assembly-{ephemeral.name}"
    manifest = json.loads((nested / "manifest.json").read_text())
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert len(stacks) == len(pattern_stack_classes()) + 1

    # THEN each stack is tagged as a stack (the CLI passes these to CloudFormation; with
    # explicitStackTags, Tags.of tags only resources), so `make teardown` finds it
    for stack in stacks:
        metadata = json.loads((nested / stack["additionalMetadataFile"]).read_text())
        entries = [e for values in metadata.values() for e in values]
        (tags,) = [e["data"] for e in entries if e["type"] == "aws:cdk:stack-tags"]
        by_key = {
            tag.get("key", tag.get("Key")): tag.get("value", tag.get("Value")) for tag in tags
        }
        assert by_key["app"] == "serverless-patterns", stack["displayName"]
        assert by_key["stage"] == ephemeral.name, stack["displayName"]


def test_every_pattern_table_is_keyed_on_demand_encrypted_and_expiring(
    any_stage: SynthesizedStage,
) -> None:
    for stack in any_stage.stage.pattern_stacks.values():
        # GIVEN a pattern stack WHEN its tables are read
        resources = any_stage.template_json(stack.node.id)["Resources"]
        tables = [
            table["Properties"] for table in of_type(resources, "AWS::DynamoDB::Table").values()
        ]
        # THEN each is on demand, encrypted and expires items (each pattern's own tests
        # check its tables' keys: tests/infra/<pattern>/test_template.py)
        for props in tables:
            expiry = {key: props[key] for key in EXPIRING_TABLE_PROPERTIES}
            assert expiry == EXPIRING_TABLE_PROPERTIES, stack.node.id


def test_every_pattern_stack_outputs_its_api_url(ephemeral: SynthesizedStage) -> None:
    # GIVEN the ephemeral stage WHEN each pattern stack's outputs are listed
    outputs = {
        stack.node.id: set(ephemeral.template_json(stack.node.id)["Outputs"])
        for stack in ephemeral.stage.pattern_stacks.values()
    }
    # THEN each has the API URL the scenarios and e2e tests start from (each pattern's own
    # tests check the rest of its outputs: tests/infra/<pattern>/test_template.py)
    assert outputs and all("ApiUrl" in names for names in outputs.values())


def physical_names(stage: SynthesizedStage) -> dict[str, str]:
    names = {}
    for stack_id, logical_id, resource in resources(stage):
        prop = NAME_PROPERTIES.get(resource["Type"])
        value = resource.get("Properties", {}).get(prop) if prop else None
        if value is not None:
            names[f"{stack_id}/{logical_id}"] = json.dumps(value)
    return names


def test_only_names_aws_requires_are_set_and_they_carry_the_stage(
    any_stage: SynthesizedStage,
) -> None:
    for stack_id, logical_id, resource in resources(any_stage):
        prop = NAME_PROPERTIES.get(resource["Type"])
        if prop and prop in resource.get("Properties", {}):
            assert resource["Type"] in STAGE_SCOPED_NAMES, f"{stack_id}/{logical_id} is named"
            assert any_stage.name in json.dumps(resource["Properties"][prop])


def test_names_kept_once_per_account_carry_the_region(any_stage: SynthesizedStage) -> None:
    # GIVEN the stage's resources whose names are unique across the account's regions
    # THEN each name ends with the region the stack is deployed to
    named = [
        (f"{stack_id}/{logical_id}", resource["Properties"][NAME_PROPERTIES[resource["Type"]]])
        for stack_id, logical_id, resource in resources(any_stage)
        if resource["Type"] in ACCOUNT_WIDE_NAMES
    ]
    assert len(named) == len(pattern_stack_classes())  # a dashboard per pattern
    for where, name in named:
        assert name["Fn::Join"][1][-1] == {"Ref": "AWS::Region"}, where


def test_two_stages_share_no_physical_name(
    ephemeral: SynthesizedStage, persistent: SynthesizedStage
) -> None:
    # GIVEN two stages synthesized side by side WHEN their explicit names are compared
    # THEN none is shared, so both deploy to one account
    assert physical_names(ephemeral)
    assert not set(physical_names(ephemeral).values()) & set(physical_names(persistent).values())


def test_every_taggable_resource_carries_app_stage_and_pattern(any_stage: SynthesizedStage) -> None:
    for stack_id, logical_id, resource in resources(any_stage):
        if resource["Type"] not in TAGGABLE:
            continue
        tags = resource["Properties"].get("Tags", [])
        keys = set(tags) if isinstance(tags, dict) else {tag["Key"] for tag in tags}
        assert {"app", "stage", "pattern"} <= keys, f"{stack_id}/{logical_id}"


def test_ephemeral_stage_destroys_everything(ephemeral: SynthesizedStage) -> None:
    for stack_id, logical_id, resource in resources(ephemeral):
        assert resource.get("DeletionPolicy", "Delete") == "Delete", f"{stack_id}/{logical_id}"
        assert resource.get("UpdateReplacePolicy", "Delete") == "Delete"
        if resource["Type"] == "AWS::DynamoDB::Table":
            assert resource["Properties"]["DeletionProtectionEnabled"] is False
    for stack in ephemeral.stage.node.children:
        assert not getattr(stack, "termination_protection", False)


def test_persistent_stage_keeps_its_data(persistent: SynthesizedStage) -> None:
    stateful = [r for r in resources(persistent) if r[2]["Type"] in STATEFUL]
    assert stateful
    for stack_id, logical_id, resource in stateful:
        assert resource["DeletionPolicy"] == "Retain", f"{stack_id}/{logical_id}"
        if resource["Type"] == "AWS::DynamoDB::Table":
            props = resource["Properties"]
            assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
            assert props["DeletionProtectionEnabled"] is True
    assert all(s.termination_protection for s in persistent.stage.pattern_stacks.values())


def test_every_function_logs_to_a_group_its_stack_owns(any_stage: SynthesizedStage) -> None:
    """No function, CDK's own helpers included, logs to a group that outlives the stage.

    Lambda writes to ``/aws/lambda/<name>`` unless ``LoggingConfig.LogGroup`` names a
    group, and creates a missing group when the role allows ``logs:CreateLogGroup``
    (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html).
    """
    # GIVEN every Lambda function of the stage, CDK's S3 helpers included
    helpers: set[str] = set()
    for stack_id in any_stage.templates:
        stack_resources = any_stage.template_json(stack_id)["Resources"]
        for logical_id, function in of_type(stack_resources, "AWS::Lambda::Function").items():
            if "Handler" in function["Properties"] and "Code" in function["Properties"]:
                helpers.update(h for h in ("BucketNotifications", "AutoDelete") if h in logical_id)
            where = f"{stack_id}/{logical_id}"
            # THEN each names a log group of its own stack, with retention
            group = function["Properties"].get("LoggingConfig", {}).get("LogGroup", {})
            assert "Ref" in group, f"{where} logs to /aws/lambda/<name>, owned by no stack"
            group_resource = stack_resources[group["Ref"]]
            assert group_resource["Type"] == "AWS::Logs::LogGroup"
            assert group_resource["Properties"]["RetentionInDays"] in (7, 90)
            # AND its role may not create a log group (none comes back after destroy)
            role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
            assert "ManagedPolicyArns" not in stack_resources[role_id]["Properties"], where
            actions = {
                action
                for statement in policy_statements(stack_resources, role_id)
                for action in as_list(statement["Action"])
            }
            assert "logs:CreateLogGroup" not in actions, where
    # AND the functions CDK adds were among them: one per custom resource that needs one
    types = {
        resource["Type"]
        for stack_id in any_stage.templates
        for resource in any_stage.template_json(stack_id)["Resources"].values()
    }
    expected = {"BucketNotifications"} if "Custom::S3BucketNotifications" in types else set()
    if "Custom::S3AutoDeleteObjects" in types:
        expected.add("AutoDelete")
    assert helpers == expected
    # AND a persistent stage never empties a bucket when its stack is deleted
    assert not any_stage.stage.settings.persistent or "Custom::S3AutoDeleteObjects" not in types


def test_powertools_layer_resolves_in_aws_and_stops_deployment_elsewhere(
    ephemeral: SynthesizedStage,
) -> None:
    """The layer is published per partition under other accounts and versions.

    Only the ``aws`` partition's publisher is known; in another partition
    ``Fn::FindInMap`` finds no entry, so CloudFormation refuses the template before it
    creates anything instead of failing on a layer that does not exist.
    """
    # GIVEN a function of the first pattern stack (every app function has the layer)
    stack = next(iter(ephemeral.stage.pattern_stacks.values()))
    template = ephemeral.template_json(stack.node.id)
    (function, *_) = [
        f
        for f in of_type(template["Resources"], "AWS::Lambda::Function").values()
        if "POWERTOOLS_SERVICE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    layer = function["Properties"]["Layers"][0]
    # WHEN the layer ARN is resolved in the aws partition
    arn = resolve(layer, TemplateContext(template, partition="aws", region="eu-west-1"))
    # THEN it is Powertools' published ARN at the pinned version
    assert arn == (
        "arn:aws:lambda:eu-west-1:017000801446:layer:"
        f"AWSLambdaPowertoolsPythonV3-python314-arm64:{POWERTOOLS_LAYER_VERSION}"
    )
    # AND in aws-cn (or any unlisted partition) there is nothing to resolve it to
    with pytest.raises(KeyError, match="aws-cn"):
        resolve(layer, TemplateContext(template, partition="aws-cn", region="cn-north-1"))
    # AND cdk.json claims only the partitions the layer is known in
    partitions = cdk_json_context()["@aws-cdk/core:target-partitions"]
    assert sorted(partitions) == sorted(POWERTOOLS_LAYER_PUBLISHERS)


def test_active_tracing_is_a_per_stage_option(any_stage: SynthesizedStage) -> None:
    # GIVEN a stage synthesized with cdk.json's context (no `-c tracing=...`)
    functions = [
        (stack_id, logical_id, resource["Properties"])
        for stack_id, logical_id, resource in resources(any_stage)
        # The app's functions (ServiceFunction), not the CDK custom resource handlers.
        if resource["Type"] == "AWS::Lambda::Function"
        and "POWERTOOLS_SERVICE_NAME"
        in resource["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert functions
    # THEN its functions trace actively exactly when the stage is persistent
    traced = any_stage.stage.settings.persistent
    for stack_id, logical_id, props in functions:
        expected = {"Mode": "Active"} if traced else None
        assert props.get("TracingConfig") == expected, f"{stack_id}/{logical_id}"


def test_only_the_stages_alarms_may_publish_to_its_topic(any_stage: SynthesizedStage) -> None:
    # GIVEN the stage's alarm topic policy (it replaces SNS's default policy)
    alerts = any_stage.template_json("Alerts")["Resources"]
    (policy,) = of_type(alerts, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    # THEN CloudWatch may publish, for alarms of this account named after the stage
    # (without an Allow a service principal may not publish, and no alarm notifies)
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert as_list(allow["Action"]) == ["sns:Publish"]
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    deployed = TemplateContext(any_stage.template_json("Alerts"), region="eu-west-1")
    source_arns = [
        resolve(arn, deployed) for arn in as_list(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    ]
    alarm_arn = f"arn:aws:cloudwatch:eu-west-1:{deployed.account_id}:alarm:"
    assert source_arns == [f"{alarm_arn}{any_stage.name}-{c}*" for c in string.ascii_uppercase]
    # AND publishing without TLS is still refused to everyone
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    # AND every alarm of the stage's pattern stacks matches, and no alarm of a stage whose
    # name starts with this one's (pr-4: pr-42, pr-4-hotfix)
    alarm_names = [
        alarm["Properties"]["AlarmName"]
        for stack in any_stage.stage.pattern_stacks.values()
        for alarm in of_type(
            any_stage.template_json(stack.node.id)["Resources"], "AWS::CloudWatch::Alarm"
        ).values()
    ]

    def publishes(alarm_name: str) -> bool:
        return any(iam_matches(arn, alarm_arn + alarm_name) for arn in source_arns)

    assert alarm_names and all(publishes(name) for name in alarm_names)
    stage = any_stage.name
    for other in (f"{stage}2", f"{stage}-hotfix"):
        assert not any(publishes(other + name.removeprefix(stage)) for name in alarm_names)


# --------------------------------------------------------------------------- IAM


def test_no_policy_grants_a_wildcard_action_or_anything_else_on_star(
    any_stage: SynthesizedStage,
) -> None:
    # GIVEN every stack of the stage THEN no action is a wildcard, and a statement on "*"
    # grants only actions without a resource type (the X-Ray writes, ListStreams)
    for stack_id in any_stage.templates:
        assert_no_wildcard_actions(any_stage.template_json(stack_id)["Resources"])


def _failure_destination_queues(resources: dict[str, Any]) -> set[str]:
    """The queues Lambda sends failure records to: asynchronous on-failure destinations
    and stream mappings' on-failure destinations (their logical ids)."""
    destinations = [
        config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        for config in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if "OnFailure" in config["Properties"].get("DestinationConfig", {})
    ] + [
        mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        for mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if "DestinationConfig" in mapping["Properties"]
    ]
    return {
        arn["Fn::GetAtt"][0]
        for arn in destinations
        if isinstance(arn, dict)
        and "Fn::GetAtt" in arn
        and resources[arn["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
    }


def test_failure_destination_queues_are_granted_send_message_only(
    any_stage: SynthesizedStage,
) -> None:
    """Lambda sends a failure record with the function's role, which needs
    ``sqs:SendMessage`` and nothing else (CDK's own SqsDestination and SqsDlq also grant
    ``GetQueueAttributes`` and ``GetQueueUrl``)."""
    queues = 0
    for stack_id in any_stage.templates:
        resources = any_stage.template_json(stack_id)["Resources"]
        destinations = _failure_destination_queues(resources)
        queues += len(destinations)
        for where, statement in all_policy_statements(resources):
            targets = {
                arn["Fn::GetAtt"][0]
                for arn in as_list(statement["Resource"])
                if isinstance(arn, dict) and "Fn::GetAtt" in arn
            }
            if targets & destinations:
                assert as_list(statement["Action"]) == ["sqs:SendMessage"], where
    # the recursive processor, one-off schedules' cleanup, and both stream consumers
    assert queues >= 4


def test_actions_without_a_resource_type_are_granted_only_on_star(
    any_stage: SynthesizedStage,
) -> None:
    """A grant IAM could never match is a grant the code does not have.

    The Service Authorization Reference lists some actions with no resource type
    (``dynamodb:ListStreams``, the X-Ray writes): only ``"Resource": "*"`` grants them.
    """
    for stack_id in any_stage.templates:
        assert_resourceless_actions_only_on_star(any_stage.template_json(stack_id)["Resources"])


def test_every_event_source_mapping_is_created_after_its_consumers_policies(
    any_stage: SynthesizedStage,
) -> None:
    """Lambda checks a mapping's permissions when it creates it (for a stream: the reads
    and ``dynamodb:ListStreams``), so CloudFormation must attach every policy of the
    consumer's role first: the default policy and the stream consumer's StreamListing."""
    mappings = 0
    for stack_id in any_stage.templates:
        stack_resources = any_stage.template_json(stack_id)["Resources"]
        policies = of_type(stack_resources, "AWS::IAM::Policy")
        for mapping_id, mapping in of_type(
            stack_resources, "AWS::Lambda::EventSourceMapping"
        ).items():
            mappings += 1
            function = stack_resources[mapping["Properties"]["FunctionName"]["Ref"]]
            role = {"Ref": function["Properties"]["Role"]["Fn::GetAtt"][0]}
            attached = {pid for pid, p in policies.items() if role in p["Properties"]["Roles"]}
            assert attached, f"{stack_id}/{mapping_id}: its consumer's role has no policy"
            missing = attached - set(mapping.get("DependsOn", []))
            assert not missing, f"{stack_id}/{mapping_id} may be created before {sorted(missing)}"
    assert mappings, "no event source mapping to check"
