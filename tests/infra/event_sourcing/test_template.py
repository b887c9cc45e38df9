"""Assertions on the EventSourcing stack: the properties its behaviour depends on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.stage import cdk_json_context
from tests.infra.conftest import SynthesizedStage
from tests.infra.templates import (
    EXPIRING_TABLE_PROPERTIES,
    alarm_properties,
    api_methods,
    assert_outputs_and_table_keys,
    assert_transaction_tables_alarmed,
    function_by_handler,
    function_role_ids,
    of_type,
    only,
    request_schema,
    role_statements,
)
from tests.support.events import dynamodb_stream_record

STACK = "EventSourcing"


def grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """``{resource (as JSON): actions}`` of the role's Allow statements."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        actions = actions if isinstance(actions, list) else [actions]
        targets = statement["Resource"]
        for target in targets if isinstance(targets, list) else [targets]:
            found.setdefault(json.dumps(target, sort_keys=True), set()).update(actions)
    return found


def getatt(logical_id: str, attribute: str) -> str:
    return json.dumps({"Fn::GetAtt": [logical_id, attribute]}, sort_keys=True)


# --------------------------------------------------------------------------- table and bus


def test_event_table_is_keyed_by_account_and_version_with_a_new_image_stream(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "account_id", "KeyType": "HASH"},
                {"AttributeName": "version", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": "account_id", "AttributeType": "S"},
                {"AttributeName": "version", "AttributeType": "N"},
            ],
            "StreamSpecification": {"StreamViewType": "NEW_IMAGE"},
            **EXPIRING_TABLE_PROPERTIES,
        },
    )


@pytest.mark.parametrize(
    ("stage_fixture", "policy", "protected"),
    [("ephemeral", "Delete", False), ("persistent", "Retain", True)],
)
def test_events_are_kept_only_on_persistent_stages(
    request: pytest.FixtureRequest, stage_fixture: str, policy: str, protected: bool
) -> None:
    stage: SynthesizedStage = request.getfixturevalue(stage_fixture)
    resources = stage.template_json(STACK)["Resources"]
    _, table = only(resources, "AWS::DynamoDB::Table")
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == policy
    assert table["Properties"].get("DeletionProtectionEnabled", False) is protected
    pitr = table["Properties"]["PointInTimeRecoverySpecification"]
    assert pitr["PointInTimeRecoveryEnabled"] is protected
    _, bus = only(resources, "AWS::Events::EventBus")
    # A named bus kept after a failed first create would block the retry: kept except then
    assert bus["DeletionPolicy"] == ("RetainExceptOnCreate" if protected else "Delete")
    assert bus["UpdateReplacePolicy"] == policy
    for queue in of_type(resources, "AWS::SQS::Queue").values():
        assert queue["DeletionPolicy"] == policy


def test_the_stack_owns_its_event_bus(
    resources: dict[str, Any], ephemeral: SynthesizedStage
) -> None:
    _, bus = only(resources, "AWS::Events::EventBus")
    # CloudFormation requires a bus name: it starts with the stack name, so with the stage.
    assert bus["Properties"]["Name"] == "pr-1-EventSourcing-EventSourcing"
    outputs = ephemeral.template_json(STACK)["Outputs"]
    bus_id = next(iter(of_type(resources, "AWS::Events::EventBus")))
    assert outputs["EventBusName"]["Value"] == {"Ref": bus_id}


# --------------------------------------------------------------------------- functions and IAM


def test_each_function_has_its_own_role_without_managed_policies(resources: dict[str, Any]) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    assert {f["Properties"]["Handler"] for f in functions.values()} == {
        "account_api.handler",
        "account_publisher.handler",
    }
    roles = function_role_ids(resources)
    assert len(set(roles)) == 2
    for role_id in roles:
        assert "ManagedPolicyArns" not in resources[role_id]["Properties"]


def test_api_function_may_only_read_and_append(resources: dict[str, Any]) -> None:
    table_id, _ = only(resources, "AWS::DynamoDB::Table")
    found = grants(role_statements(resources, "account_api.handler"))
    assert found[getatt(table_id, "Arn")] == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    }
    # No update, delete, scan or batch write: events are immutable.
    every_action = set().union(*found.values())
    assert not every_action & {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"}
    assert not any(a.startswith(("events:", "sqs:")) for a in every_action)


def test_publisher_may_read_the_stream_put_events_and_set_records_aside(
    resources: dict[str, Any],
) -> None:
    table_id, _ = only(resources, "AWS::DynamoDB::Table")
    bus_id, _ = only(resources, "AWS::Events::EventBus")
    (queue_id,) = of_type(resources, "AWS::SQS::Queue")
    found = grants(role_statements(resources, "account_publisher.handler"))
    assert found[getatt(table_id, "StreamArn")] == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }
    # No resource type: only "*" grants it (blocks.stream.grant_stream_read).
    assert found[json.dumps("*")] == {"dynamodb:ListStreams"}
    assert found[getatt(bus_id, "Arn")] == {"events:PutEvents"}
    # ... and only with the pattern's own event source
    (put_events,) = [
        statement
        for statement in role_statements(resources, "account_publisher.handler")
        if statement["Action"] == "events:PutEvents"
    ]
    _, publisher = function_by_handler(resources, "account_publisher.handler")
    source = publisher["Properties"]["Environment"]["Variables"]["EVENT_SOURCE"]
    assert put_events["Condition"] == {
        "ForAllValues:StringEquals": {"events:source": [source]},
        "Null": {"events:source": "false"},
    }
    assert "sqs:SendMessage" in found[getatt(queue_id, "Arn")]
    # Nothing on the table itself: the publisher never reads or writes items.
    assert getatt(table_id, "Arn") not in found


def test_api_function_gets_the_snapshot_interval_and_attempts(resources: dict[str, Any]) -> None:
    _, function = function_by_handler(resources, "account_api.handler")
    env = function["Properties"]["Environment"]["Variables"]
    assert env["SNAPSHOT_INTERVAL"] == "10"
    assert env["MAX_APPEND_ATTEMPTS"] == "8"
    assert env["IDEMPOTENCY_TTL_SECONDS"] == "86400"
    assert env["POWERTOOLS_SERVICE_NAME"] == "event-sourcing"


# --------------------------------------------------------------------------- stream mapping


def test_stream_mapping_retries_bisects_and_reports_partial_failures(
    resources: dict[str, Any],
) -> None:
    _, mapping = only(resources, "AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    publisher_id, _ = function_by_handler(resources, "account_publisher.handler")
    table_id, _ = only(resources, "AWS::DynamoDB::Table")
    (queue_id,) = of_type(resources, "AWS::SQS::Queue")
    assert props["FunctionName"] == {"Ref": publisher_id}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == 5
    assert props["MaximumRecordAgeInSeconds"] == 6 * 3600
    assert props["ParallelizationFactor"] == 1
    assert props["BatchSize"] == 10
    assert props["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}
    }


def _matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering for the syntax this stack uses: nested keys, exact values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and _matches(sub, value[key]) for key, sub in pattern.items()
        )
    assert isinstance(pattern, list) and all(isinstance(v, str) for v in pattern), pattern
    return value in pattern


def test_stream_filter_lets_only_new_event_items_through(resources: dict[str, Any]) -> None:
    # GIVEN the deployed filter
    _, mapping = only(resources, "AWS::Lambda::EventSourceMapping")
    (criterion,) = mapping["Properties"]["FilterCriteria"]["Filters"]
    pattern = json.loads(criterion["Pattern"])
    keys = {"account_id": "8d1c4b7e-0000-4000-8000-000000000000", "version": 3}
    event = {**keys, "kind": "event", "type": "AccountCredited", "amount": 5, "balance": 5}
    snapshot = {**keys, "version": 0, "kind": "snapshot", "snapshot_version": 10, "balance": 1}
    marker = {"account_id": "idempotency#ab", "version": 0, "kind": "idempotency"}

    # WHEN stream records of every kind of write meet it
    def passes(**kwargs: Any) -> bool:
        return _matches(pattern, dynamodb_stream_record(**kwargs))

    # THEN only event items pass (the filter looks under "dynamodb" only, as AWS documents
    # for DynamoDB; an event is never modified, and the publisher skips a MODIFY anyway)
    assert pattern == {"dynamodb": {"NewImage": {"kind": {"S": ["event"]}}}}
    assert passes(keys=keys, new_image=event, event_name="INSERT")
    assert not passes(keys=keys, new_image=snapshot, event_name="INSERT")
    assert not passes(keys=keys, new_image=snapshot, event_name="MODIFY")
    assert not passes(keys=marker, new_image=marker, event_name="INSERT")
    assert not passes(keys=keys, event_name="REMOVE", view_type="KEYS_ONLY")


def test_failure_queue_is_encrypted_and_keeps_records_14_days(resources: dict[str, Any]) -> None:
    (queue,) = of_type(resources, "AWS::SQS::Queue").values()
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


# --------------------------------------------------------------------------- API


def test_every_method_needs_iam_and_commands_validate_their_amount(
    resources: dict[str, Any],
) -> None:
    methods = api_methods(resources)
    assert sorted(m["HttpMethod"] for m in methods) == ["GET", "GET", "POST", "POST", "POST"]
    schemas = [request_schema(resources, m) for m in methods if "RequestModels" in m]
    assert len(schemas) == 2
    for schema in schemas:
        assert schema["required"] == ["amount"] and schema["additionalProperties"] is False
        assert schema["properties"]["amount"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 100_000_000,
        }


def test_commands_are_throttled_harder_than_reads(resources: dict[str, Any]) -> None:
    _, stage = only(resources, "AWS::ApiGateway::Stage")
    settings = {
        (s["ResourcePath"], s["HttpMethod"]): s for s in stage["Properties"]["MethodSettings"]
    }
    assert settings[("/*", "*")]["ThrottlingRateLimit"] == 50
    for path in (
        "/~1accounts",
        "/~1accounts~1{account_id}~1credit",
        "/~1accounts~1{account_id}~1withdraw",
    ):
        assert settings[(path, "POST")]["ThrottlingRateLimit"] == 20


def test_alarms_watch_the_stream_lag_and_the_failure_queue(resources: dict[str, Any]) -> None:
    names = {alarm["AlarmName"] for alarm in alarm_properties(resources)}
    assert "pr-1-EventSourcing-AccountPublisher-Iterator-Age-Max-Critical" in names
    assert "pr-1-EventSourcing-PublisherFailureQueue-Queue-Message-Count-Max-Critical" in names
    assert "pr-1-EventSourcing-AccountApi-Fault-Count-Critical" in names


def test_outputs_and_table_keys_are_the_documented_ones(ephemeral: SynthesizedStage) -> None:
    assert_outputs_and_table_keys(
        ephemeral.template_json(STACK),
        {
            "ApiUrl",
            "EventBusName",
            "EventTableName",
            "PublisherFailureQueueUrl",
        },
        [{"account_id": "HASH", "version": "RANGE"}],
    )


def test_every_table_alarms_on_its_transactions_system_errors(any_stage: SynthesizedStage) -> None:
    assert_transaction_tables_alarmed(any_stage.template_json(STACK))  # the event and its record


def test_domain_events_name_the_app_as_their_source(resources: dict[str, Any]) -> None:
    # The source follows cdk.json's app_name (a fork renamed there publishes as itself).
    _, publisher = function_by_handler(resources, "account_publisher.handler")
    source = publisher["Properties"]["Environment"]["Variables"]["EVENT_SOURCE"]
    assert source == f"{cdk_json_context()['app_name']}.accounts"


def test_stack_matches_its_snapshot(stack_snapshot: Callable[[str], None]) -> None:
    # A template or acknowledgment changes only with a reviewed snapshot update.
    stack_snapshot(STACK)
