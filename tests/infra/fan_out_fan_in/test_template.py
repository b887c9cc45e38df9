"""Assertions on the FanOutFanIn stack: the properties its behaviour depends on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest

from blocks.stage_settings import StageSettings
from patterns.fan_out_fan_in.construct import FanOutFanIn
from tests.infra.alarms import assert_emitted_metric_alarmed, assert_oldest_message_alarmed
from tests.infra.conftest import SynthesizedStage
from tests.infra.templates import (
    STANDARD_ALARM_METRICS,
    alarm_properties,
    alarmed_metric_names,
    api_methods,
    assert_alarm_names_start_with,
    assert_fair_groups_graphed,
    assert_outputs_and_table_keys,
    assert_transaction_tables_alarmed,
    assert_work_queue_redrives_to_a_kept_dlq,
    function_by_handler,
    function_role_ids,
    mapping_of,
    of_type,
    request_schema,
    role_statements,
)

STACK = "FanOutFanIn"
WORKER_TIMEOUT = 30
HANDLERS = ("fan_out_api.handler", "fan_out_worker.handler", "fan_out_reducer.handler")
# The filter the unit tests' stream driver applies (tests/unit/fan_out_fan_in/conftest.py).
REDUCER_FILTER = {
    "dynamodb": {"NewImage": {"remaining": {"N": ["0"]}, "status": {"S": ["RUNNING"]}}},
}


def table_id(resources: dict[str, Any], sort_key: bool) -> str:
    (found,) = [
        k
        for k, v in of_type(resources, "AWS::DynamoDB::Table").items()
        if (len(v["Properties"]["KeySchema"]) == 2) == sort_key
    ]
    return found


def actions_on(
    statements: list[dict[str, Any]], logical_id: str, attribute: str = "Arn"
) -> set[str]:
    """Actions granted on exactly ``Fn::GetAtt [logical_id, attribute]``."""
    target = {"Fn::GetAtt": [logical_id, attribute]}
    found: set[str] = set()
    for statement in statements:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        if target in resources:
            actions = statement["Action"]
            found |= set(actions if isinstance(actions, list) else [actions])
    return found


def all_resources_of(statements: list[dict[str, Any]]) -> str:
    return json.dumps([s["Resource"] for s in statements])


# --------------------------------------------------------------------------- data


def test_only_the_job_table_streams_its_new_images(resources: dict[str, Any]) -> None:
    # (Both tables' keys and expiry: tests/infra/test_stage.py.)
    jobs = resources[table_id(resources, sort_key=False)]["Properties"]
    results = resources[table_id(resources, sort_key=True)]["Properties"]
    # The reducer's trigger: the job table's stream with the new image.
    assert jobs["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert "StreamSpecification" not in results


def test_persistent_stage_keeps_tables_and_queues(persistent: SynthesizedStage) -> None:
    resources = persistent.template_json(STACK)["Resources"]
    for kind in ("AWS::DynamoDB::Table", "AWS::SQS::Queue"):
        for resource in of_type(resources, kind).values():
            assert resource["DeletionPolicy"] == "Retain"
    for table in of_type(resources, "AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }


def test_the_dashboard_shows_how_fair_queues_share_the_subtask_queue(
    resources: dict[str, Any],
) -> None:
    # GIVEN the subtask queue, whose messages carry their caller as MessageGroupId
    # THEN the dashboard graphs its noisy groups and its quiet groups' oldest message
    assert_fair_groups_graphed(resources)


def test_ephemeral_stage_destroys_tables_and_queues(resources: dict[str, Any]) -> None:
    for kind in ("AWS::DynamoDB::Table", "AWS::SQS::Queue"):
        for resource in of_type(resources, kind).values():
            assert resource["DeletionPolicy"] == "Delete"


# --------------------------------------------------------------------------- queues and mappings


def test_subtask_queue_redrives_to_a_dlq_and_outlasts_its_consumer(
    resources: dict[str, Any],
) -> None:
    assert_work_queue_redrives_to_a_kept_dlq(resources, min_visibility_seconds=6 * WORKER_TIMEOUT)


def test_worker_knows_the_queues_max_receive_count(resources: dict[str, Any]) -> None:
    # The worker counts a failure on the last receive: its setting must match the queue.
    _, worker = function_by_handler(resources, "fan_out_worker.handler")
    (work,) = [
        q
        for q in of_type(resources, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    ]
    max_receive_count = work["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    env = worker["Properties"]["Environment"]["Variables"]
    assert env["MAX_RECEIVE_COUNT"] == str(max_receive_count)


def test_worker_consumes_with_partial_batch_responses_and_bounded_concurrency(
    resources: dict[str, Any],
) -> None:
    mapping = mapping_of(resources, "fan_out_worker.handler")
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}
    queue_id = mapping["EventSourceArn"]["Fn::GetAtt"][0]
    assert "RedrivePolicy" in resources[queue_id]["Properties"]


def test_reducer_reads_the_job_stream_filtered_on_remaining_zero(
    resources: dict[str, Any],
) -> None:
    mapping = mapping_of(resources, "fan_out_reducer.handler")
    assert mapping["EventSourceArn"] == {
        "Fn::GetAtt": [table_id(resources, sort_key=False), "StreamArn"]
    }
    (only_filter,) = mapping["FilterCriteria"]["Filters"]
    assert json.loads(only_filter["Pattern"]) == REDUCER_FILTER
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 5
    # Records the reducer keeps failing go to a queue, not nowhere.
    failure_queue_id = mapping["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert resources[failure_queue_id]["Type"] == "AWS::SQS::Queue"


# --------------------------------------------------------------------------- functions and IAM


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_are_hardened(resources: dict[str, Any], handler: str) -> None:
    _, function = function_by_handler(resources, handler)
    props = function["Properties"]
    assert props["Runtime"] == "python3.14"
    assert props["Architectures"] == ["arm64"]
    assert "TracingConfig" not in props  # an ephemeral stage: tracing off (test_stage)
    env = props["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "fan-out-fan-in"
    assert set(env) >= {"JOB_TABLE_NAME", "RESULT_TABLE_NAME", "JOB_TIMEOUT_SECONDS"}
    log_group = resources[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == 7


def test_ventilator_has_time_and_cpu_for_ten_thousand_sends(resources: dict[str, Any]) -> None:
    _, api = function_by_handler(resources, "fan_out_api.handler")
    props = api["Properties"]
    # Under API Gateway's 29 s integration timeout; the handler stops 3 s before it.
    assert props["Timeout"] == 28
    assert props["MemorySize"] == 1024
    assert props["Environment"]["Variables"]["SEND_CONCURRENCY"] == "16"


def test_each_function_has_its_own_role_without_managed_policies(
    resources: dict[str, Any],
) -> None:
    roles = function_role_ids(resources)
    assert len(roles) == len(set(roles)) == 3
    for role_id in roles:
        assert "ManagedPolicyArns" not in resources[role_id]["Properties"]


def test_api_function_may_record_jobs_and_send_subtasks_only(resources: dict[str, Any]) -> None:
    statements = role_statements(resources, "fan_out_api.handler")
    jobs, results = table_id(resources, False), table_id(resources, True)
    assert actions_on(statements, jobs) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    assert results not in all_resources_of(statements)
    sends = [s for s in statements if "sqs:SendMessage" in json.dumps(s["Action"])]
    assert len(sends) == 1
    # SendMessage covers SendMessageBatch; the queue URL comes from the environment.
    assert sends[0]["Action"] == "sqs:SendMessage"
    assert "dynamodb:ListStreams" not in json.dumps(statements)


def test_worker_may_put_results_and_update_the_counter_only(resources: dict[str, Any]) -> None:
    statements = role_statements(resources, "fan_out_worker.handler")
    jobs, results = table_id(resources, False), table_id(resources, True)
    # The two halves of the TransactWriteItems, nothing more.
    assert actions_on(statements, jobs) == {"dynamodb:UpdateItem"}
    assert actions_on(statements, results) == {"dynamodb:PutItem"}
    assert "sqs:SendMessage" not in json.dumps(statements)
    # What Lambda's poller needs (AWSLambdaSQSQueueExecutionRole), nothing the code skips.
    (consume,) = [s for s in statements if "sqs:ReceiveMessage" in json.dumps(s["Action"])]
    assert set(consume["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }


def test_reducer_may_query_results_and_transition_jobs_only(resources: dict[str, Any]) -> None:
    statements = role_statements(resources, "fan_out_reducer.handler")
    jobs, results = table_id(resources, False), table_id(resources, True)
    assert actions_on(statements, jobs) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert actions_on(statements, results) == {"dynamodb:Query"}
    assert actions_on(statements, jobs, "StreamArn") == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }
    # No resource type: only "*" grants it (blocks.stream.grant_stream_read).
    on_star = [s for s in statements if s["Resource"] == "*"]
    assert [s["Action"] for s in on_star] == ["dynamodb:ListStreams"]


# --------------------------------------------------------------------------- API


def test_every_method_needs_iam_and_post_validates_its_body(
    resources: dict[str, Any],
) -> None:
    methods = api_methods(resources)
    assert {m["HttpMethod"] for m in methods} == {"POST", "GET"}
    post = next(m for m in methods if m["HttpMethod"] == "POST")
    schema = request_schema(resources, post)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["items"]["maxItems"] == 10_000
    assert schema["properties"]["items"]["minItems"] == 1
    assert schema["properties"]["count"]["minimum"] == 1
    assert schema["properties"]["count"]["maximum"] == 10_000


def test_submissions_are_throttled_harder_than_polls(resources: dict[str, Any]) -> None:
    (stage,) = of_type(resources, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    throttles = {s["ResourcePath"] + " " + s["HttpMethod"]: s for s in props["MethodSettings"]}
    assert throttles["/* *"]["ThrottlingRateLimit"] == 50
    assert throttles["/~1jobs POST"]["ThrottlingRateLimit"] == 2
    assert throttles["/~1jobs POST"]["ThrottlingBurstLimit"] == 5


# --------------------------------------------------------------------------- monitoring


def test_alarms_cover_the_failure_modes(resources: dict[str, Any]) -> None:
    alarms = alarm_properties(resources)
    assert_alarm_names_start_with(alarms, "pr-1-FanOutFanIn-")
    watched = alarmed_metric_names(alarms)
    assert watched >= STANDARD_ALARM_METRICS | {"WriteThrottleEvents"}
    # Both dead-letter queues (failed subtasks, failed reductions) are watched.
    watched_queues = {
        json.dumps(dimension["Value"])
        for alarm in alarms
        for metric in alarm.get("Metrics", [])
        if "MetricStat" in metric
        and metric["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        for dimension in metric["MetricStat"]["Metric"]["Dimensions"]
    }
    assert len(watched_queues) == 2


def test_a_subtask_older_than_its_jobs_deadline_alarms(resources: dict[str, Any]) -> None:
    # GIVEN the subtask queue WHEN its oldest subtask is older than the job timeout
    # THEN an alarm fires (the workers stopped or fall behind, with no error)
    _, api = function_by_handler(resources, "fan_out_api.handler")
    job_timeout = int(api["Properties"]["Environment"]["Variables"]["JOB_TIMEOUT_SECONDS"])
    assert_oldest_message_alarmed(resources, max_age_seconds=job_timeout)


def test_jobs_met_past_their_deadline_alarm(resources: dict[str, Any]) -> None:
    # GIVEN the worker and the reducer, which both store TIMED_OUT for a job met past
    # its deadline and count it in JobsTimedOut THEN one alarm watches what both count
    assert_emitted_metric_alarmed(
        resources, "JobsTimedOut", handlers=["fan_out_worker.handler", "fan_out_reducer.handler"]
    )


@pytest.mark.parametrize(
    "sizing",
    [
        {"worker_timeout": cdk.Duration.seconds(60)},
        {"job_timeout": cdk.Duration.minutes(10)},
        {"max_receive_count": 8},
        # 4 x 180 + 28 = 748 s to the last receive's start, 778 s to its end
        {"job_timeout": cdk.Duration.seconds(760)},
    ],
    ids=["slower-worker", "shorter-job", "more-receives", "last-run-ends-late"],
)
def test_a_failing_subtask_that_would_be_counted_too_late_is_refused_at_synth(
    sizing: dict[str, Any],
) -> None:
    # GIVEN sizing where a failing subtask's last receive comes after the job's deadline
    # (it would end TIMED_OUT instead of FAILED with its partial aggregate)
    stack = cdk.Stack(cdk.App(), "Scratch")
    stage = StageSettings(app_name="serverless-patterns", stage_name="scratch", persistent=False)

    # WHEN the pattern is built THEN synth stops with the reason
    with pytest.raises(ValueError, match="not before the job timeout"):
        FanOutFanIn(stack, "FanOutFanIn", settings=stage, **sizing)


def test_outputs_and_table_keys_are_the_documented_ones(ephemeral: SynthesizedStage) -> None:
    assert_outputs_and_table_keys(
        ephemeral.template_json(STACK),
        {
            "ApiUrl",
            "JobTableName",
            "ReductionFailureQueueUrl",
            "ResultTableName",
            "SubtaskDeadLetterQueueUrl",
            "SubtaskQueueUrl",
        },
        [{"job_id": "HASH", "subtask": "RANGE"}, {"job_id": "HASH"}],
    )


def test_every_table_alarms_on_its_transactions_system_errors(any_stage: SynthesizedStage) -> None:
    assert_transaction_tables_alarmed(any_stage.template_json(STACK))  # a result and its count


def test_stack_matches_its_snapshot(stack_snapshot: Callable[[str], None]) -> None:
    # A template or acknowledgment changes only with a reviewed snapshot update.
    stack_snapshot(STACK)
