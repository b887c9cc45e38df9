"""Assertions on the OneOffSchedules stack: the scoped IAM, the destinations, the DLQ."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from blocks.monitoring import ServiceMonitoring
from patterns.one_off_schedules.construct import OneOffSchedules
from tests.infra.alarms import assert_emitted_metric_alarmed, assert_event_wait_alarmed
from tests.infra.conftest import SCRATCH_STAGE, SynthesizedStage
from tests.infra.templates import (
    alarm_properties,
    api_methods,
    as_list,
    assert_outputs_and_table_keys,
    function_by_handler,
    of_type,
    only,
    policy_statements,
    request_schema,
    role_of,
)

STACK = "OneOffSchedules"
HANDLERS = ("schedule_api.handler", "schedule_executor.handler", "schedule_cleanup.handler")


def statements_with(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The statements granting any action that starts with ``prefix`` (e.g. "scheduler:")."""
    return [s for s in statements if any(a.startswith(prefix) for a in as_list(s["Action"]))]


def group_schedules_arn(group_id: str) -> dict[str, Any]:
    """``arn:...:schedule/<group name>/*`` as the template writes it."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":scheduler:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":schedule/",
                {"Ref": group_id},
                "/*",
            ],
        ]
    }


def dead_letter_queue_id(resources: dict[str, Any]) -> str:
    _, api = function_by_handler(resources, "schedule_api.handler")
    arn = api["Properties"]["Environment"]["Variables"]["SCHEDULE_DEAD_LETTER_QUEUE_ARN"]
    queue_id: str = arn["Fn::GetAtt"][0]
    return queue_id


def scheduler_role_id(resources: dict[str, Any]) -> str:
    _, api = function_by_handler(resources, "schedule_api.handler")
    role_id: str = api["Properties"]["Environment"]["Variables"]["SCHEDULER_ROLE_ARN"][
        "Fn::GetAtt"
    ][0]
    return role_id


# --------------------------------------------------------------------------- schedule group


def test_schedule_group_has_no_physical_name(resources: dict[str, Any]) -> None:
    # CloudFormation names it, so any number of stages coexist in one account.
    _, group = only(resources, "AWS::Scheduler::ScheduleGroup")
    assert "Name" not in group.get("Properties", {})
    tags = {t["Key"]: t["Value"] for t in group["Properties"]["Tags"]}
    assert tags == {"app": "serverless-patterns", "stage": "pr-1", "pattern": STACK}


@pytest.mark.parametrize(("stage", "policy"), [("ephemeral", "Delete"), ("persistent", "Retain")])
def test_group_and_table_follow_the_stage_kind(
    request: pytest.FixtureRequest, stage: str, policy: str
) -> None:
    synthesized: SynthesizedStage = request.getfixturevalue(stage)
    resources = synthesized.template_json(STACK)["Resources"]
    for type_name in ("AWS::Scheduler::ScheduleGroup", "AWS::DynamoDB::Table"):
        _, resource = only(resources, type_name)
        assert resource["DeletionPolicy"] == policy == resource["UpdateReplacePolicy"]
    _, table = only(resources, "AWS::DynamoDB::Table")
    assert table["Properties"]["DeletionProtectionEnabled"] is (stage == "persistent")


# --------------------------------------------------------------------------- IAM


def test_scheduler_role_is_assumable_only_by_scheduler_for_this_group(
    resources: dict[str, Any],
) -> None:
    role = resources[scheduler_role_id(resources)]
    group_id, _ = only(resources, "AWS::Scheduler::ScheduleGroup")
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [group_id, "Arn"]}},
    }
    assert "ManagedPolicyArns" not in role["Properties"]


def test_scheduler_role_may_invoke_only_the_executor(resources: dict[str, Any]) -> None:
    executor_id, _ = function_by_handler(resources, "schedule_executor.handler")
    statements = policy_statements(resources, scheduler_role_id(resources))
    assert sorted(statements, key=lambda s: str(s["Action"])) == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [executor_id, "Arn"]},
        },
        {
            "Action": "sqs:SendMessage",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [dead_letter_queue_id(resources), "Arn"]},
        },
    ]


@pytest.mark.parametrize(
    ("handler", "actions"),
    [
        (
            "schedule_api.handler",
            ["scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule"],
        ),
        ("schedule_executor.handler", None),
        ("schedule_cleanup.handler", "scheduler:DeleteSchedule"),
    ],
)
def test_schedule_access_is_spelled_out_per_function_and_only_in_the_group(
    resources: dict[str, Any], handler: str, actions: str | list[str] | None
) -> None:
    # GIVEN the function's policy WHEN its Scheduler statements are read
    group_id, _ = only(resources, "AWS::Scheduler::ScheduleGroup")
    statements = policy_statements(resources, role_of(resources, handler))
    # THEN they are exactly its actions, on the schedules of the stack's group only
    expected = [{"Action": actions, "Effect": "Allow", "Resource": group_schedules_arn(group_id)}]
    assert statements_with(statements, "scheduler:") == (expected if actions else [])


def test_creator_may_pass_only_the_scheduler_role_and_only_to_scheduler(
    resources: dict[str, Any],
) -> None:
    statements = policy_statements(resources, role_of(resources, "schedule_api.handler"))
    assert statements_with(statements, "iam:") == [
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [scheduler_role_id(resources), "Arn"]},
        }
    ]


@pytest.mark.parametrize("handler", ["schedule_executor.handler", "schedule_cleanup.handler"])
def test_only_the_creator_may_pass_a_role(resources: dict[str, Any], handler: str) -> None:
    statements = policy_statements(resources, role_of(resources, handler))
    assert statements_with(statements, "iam:") == []


def test_executor_may_invoke_only_the_cleanup(resources: dict[str, Any]) -> None:
    cleanup_id, _ = function_by_handler(resources, "schedule_cleanup.handler")
    statements = policy_statements(resources, role_of(resources, "schedule_executor.handler"))
    assert statements_with(statements, "lambda:") == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [cleanup_id, "Arn"]},
        }
    ]


@pytest.mark.parametrize(
    ("handler", "actions"),
    [
        (
            "schedule_api.handler",
            {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        ),
        ("schedule_executor.handler", {"dynamodb:GetItem", "dynamodb:UpdateItem"}),
        ("schedule_cleanup.handler", {"dynamodb:UpdateItem"}),
    ],
)
def test_table_access_is_spelled_out_per_function(
    resources: dict[str, Any], handler: str, actions: set[str]
) -> None:
    statements = policy_statements(resources, role_of(resources, handler))
    granted = {a for s in statements_with(statements, "dynamodb:") for a in as_list(s["Action"])}
    assert granted == actions


def test_each_function_has_its_own_role(resources: dict[str, Any]) -> None:
    roles = [role_of(resources, handler) for handler in HANDLERS]
    assert len(set(roles)) == 3
    assert len(of_type(resources, "AWS::IAM::Role")) == 4  # plus the Scheduler's
    for role_id in roles:
        assert "ManagedPolicyArns" not in resources[role_id]["Properties"]


def test_no_grant_reaches_every_version_of_a_function(resources: dict[str, Any]) -> None:
    for policy_id, policy in of_type(resources, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            # No "<function arn>:*" (every version and alias) anywhere.
            assert ':*"' not in json.dumps(statement["Resource"]), policy_id


# --------------------------------------------------------------------------- destinations


def test_executor_destinations_both_invoke_the_cleanup(
    template: Template, resources: dict[str, Any]
) -> None:
    executor_id, _ = function_by_handler(resources, "schedule_executor.handler")
    cleanup_id, _ = function_by_handler(resources, "schedule_cleanup.handler")
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": executor_id},
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 3600,
            "DestinationConfig": {
                "OnSuccess": {"Destination": {"Fn::GetAtt": [cleanup_id, "Arn"]}},
                "OnFailure": {"Destination": {"Fn::GetAtt": [cleanup_id, "Arn"]}},
            },
        },
    )


def test_failed_cleanups_land_in_an_encrypted_queue(resources: dict[str, Any]) -> None:
    cleanup_id, _ = function_by_handler(resources, "schedule_cleanup.handler")
    (config,) = [
        c["Properties"]
        for c in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": cleanup_id}
    ]
    assert "OnSuccess" not in config["DestinationConfig"]
    queue_id = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert resources[queue_id]["Type"] == "AWS::SQS::Queue"
    assert resources[queue_id]["Properties"]["SqsManagedSseEnabled"] is True


# --------------------------------------------------------------------------- schedules' DLQ


def test_schedule_dead_letter_queue_is_encrypted_and_kept_14_days(
    resources: dict[str, Any],
) -> None:
    queue = resources[dead_letter_queue_id(resources)]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_creator_knows_target_role_dlq_group_and_horizon(resources: dict[str, Any]) -> None:
    executor_id, _ = function_by_handler(resources, "schedule_executor.handler")
    group_id, _ = only(resources, "AWS::Scheduler::ScheduleGroup")
    _, api = function_by_handler(resources, "schedule_api.handler")
    env = api["Properties"]["Environment"]["Variables"]
    assert env["EXECUTOR_FUNCTION_ARN"] == {"Fn::GetAtt": [executor_id, "Arn"]}
    assert env["SCHEDULE_GROUP_NAME"] == {"Ref": group_id}
    assert env["SCHEDULE_HORIZON_SECONDS"] == str(365 * 86_400)
    assert env["SCHEDULE_RETRY_ATTEMPTS"] == "3"
    assert env["SCHEDULE_MAX_EVENT_AGE_SECONDS"] == "3600"
    # Scheduler retry window + Lambda async max event age + 15 minutes.
    assert env["UNDELIVERED_AFTER_SECONDS"] == str(3600 + 3600 + 900)


# --------------------------------------------------------------------------- API and alarms


def test_every_method_needs_iam_and_post_validates_its_body(resources: dict[str, Any]) -> None:
    methods = api_methods(resources)
    assert sorted(m["HttpMethod"] for m in methods) == ["DELETE", "GET", "POST"]
    post = next(m for m in methods if m["HttpMethod"] == "POST")
    schema = request_schema(resources, post)
    assert schema["additionalProperties"] is False and schema["required"] == ["at"]


def test_alarms_watch_both_dead_letter_queues_and_every_function(
    resources: dict[str, Any],
) -> None:
    alarms = alarm_properties(resources)
    names = {alarm["AlarmName"] for alarm in alarms}
    assert all(name.startswith("pr-1-OneOffSchedules-") for name in names)
    for watched in (
        "ScheduleDeadLetterQueue",
        "CleanupFailureQueue",
        "ScheduleExecutor",
        "ScheduleCleanup",
        "ScheduleApi",
    ):
        assert any(watched in name for name in names), watched


def test_runs_whose_task_failed_every_attempt_alarm(resources: dict[str, Any]) -> None:
    # GIVEN the cleanup, which records a run whose task failed all its attempts and
    # counts it in RunsFailed THEN an alarm watches what it counts
    assert_emitted_metric_alarmed(resources, "RunsFailed", handlers=["schedule_cleanup.handler"])


@pytest.mark.parametrize("handler", ["schedule_executor.handler", "schedule_cleanup.handler"])
def test_an_event_waiting_longer_than_its_retries_explain_alarms(
    resources: dict[str, Any], handler: str
) -> None:
    # GIVEN a function invoked asynchronously (the executor by the Scheduler, the
    # cleanup by the executor's destinations) THEN a backlog in Lambda's queue alarms
    assert_event_wait_alarmed(resources, handler=handler)


def test_outputs_and_table_keys_are_the_documented_ones(ephemeral: SynthesizedStage) -> None:
    assert_outputs_and_table_keys(
        ephemeral.template_json(STACK),
        {
            "ApiUrl",
            "ScheduleDeadLetterQueueUrl",
            "ScheduleGroupName",
            "ScheduleTableName",
        },
        [{"schedule_id": "HASH"}],
    )


def test_an_invocation_the_scheduler_could_not_put_in_its_dlq_alarms(
    any_stage: SynthesizedStage,
) -> None:
    resources = any_stage.template_json(STACK)["Resources"]
    (group_id,) = of_type(resources, "AWS::Scheduler::ScheduleGroup")
    alarms = [
        alarm["Properties"]
        for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/Scheduler"
    ]
    (alarm,) = alarms
    assert alarm["MetricName"] == "InvocationsFailedToBeSentToDeadLetterCount"
    # The group's name, taken from its ARN (the pattern refers to the group by ARN)
    ((dimension),) = alarm["Dimensions"]
    assert dimension["Name"] == "ScheduleGroup" and group_id in json.dumps(dimension["Value"])
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_stack_matches_its_snapshot(stack_snapshot: Callable[[str], None]) -> None:
    # A template or acknowledgment changes only with a reviewed snapshot update.
    stack_snapshot(STACK)


@pytest.mark.parametrize(
    ("setting", "refused", "accepted"),
    [
        # An attempt that dies holding its lease keeps it to its deadline rounded up to
        # the second, and Lambda's first retry comes a minute after the attempt ended:
        # at 59 s or more the retry could find the lease live.
        ("executor_timeout", cdk.Duration.seconds(59), cdk.Duration.seconds(58)),
        # Records kept less long than a schedule's event may still arrive after its time
        # (the Scheduler's 1 h and Lambda's 1 h of retries, plus 15 min): a late delivery
        # would find its record expired, and the task a client got 201 for not run.
        ("record_retention", cdk.Duration.hours(2), cdk.Duration.days(1)),
    ],
    ids=["executor-timeout", "record-retention"],
)
def test_settings_that_cannot_work_are_refused_at_synth(
    setting: str, refused: cdk.Duration, accepted: cdk.Duration
) -> None:
    # GIVEN a setting outside what the pattern's guarantees need WHEN the construct is
    # built with it THEN it is refused, naming the setting; the bound itself is fine
    stack = cdk.Stack(cdk.App(), "Scratch")
    stage = SCRATCH_STAGE
    too_far: dict[str, Any] = {setting: refused}
    with pytest.raises(ValueError, match=setting):
        OneOffSchedules(stack, "Refused", settings=stage, **too_far)
    at_the_bound: dict[str, Any] = {setting: accepted}
    OneOffSchedules(stack, "Accepted", settings=stage, **at_the_bound)


@pytest.mark.parametrize(
    ("retries", "max_event_age", "threshold_ms"),
    [
        (0, cdk.Duration.hours(1), 300_000),  # no retry: only the slack
        (1, cdk.Duration.hours(1), 30_000 + 60_000 + 300_000),  # one attempt, 1 min wait
        (2, cdk.Duration.minutes(5), None),  # events expire before the wait could show
    ],
    ids=["no-retry", "one-retry", "shorter-max-age"],
)
def test_the_executors_event_wait_alarm_follows_its_retry_settings(
    retries: int, max_event_age: cdk.Duration, threshold_ms: int | None
) -> None:
    # GIVEN an executor with its own retry attempts and maximum event age (timeout 30 s)
    stack = cdk.Stack(cdk.App(), "Scratch")
    stage = SCRATCH_STAGE
    schedules = OneOffSchedules(
        stack,
        "OneOffSchedules",
        settings=stage,
        executor_retry_attempts=retries,
        executor_max_event_age=max_event_age,
    )
    # WHEN it is monitored
    monitoring = ServiceMonitoring(
        stack,
        "Monitoring",
        settings=stage,
        pattern_name="OneOffSchedules",
        alarm_topic=sns.Topic(stack, "Topic"),
    )
    monitoring.monitor_async_function(schedules.executor_function, name="ScheduleExecutor")
    # THEN its wait alarm allows what its own retries explain, or is left out where
    # events would expire first (its failure destination sees those)
    alarms = Template.from_stack(stack).find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "AsyncEventAge"}}
    )
    assert [a["Properties"]["Threshold"] for a in alarms.values()] == (
        [threshold_ms] if threshold_ms is not None else []
    )
