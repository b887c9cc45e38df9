"""Assertions on the DecoupledInvocation stack: the properties its behaviour depends on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from localstage.intrinsics import resolve

from blocks.function import POWERTOOLS_LAYER_VERSION
from blocks.stage_settings import StageSettings
from patterns.decoupled_invocation.construct import DecoupledInvocation
from tests.infra.alarms import assert_emitted_metric_alarmed, assert_oldest_message_alarmed
from tests.infra.conftest import SynthesizedStage
from tests.infra.templates import (
    STANDARD_ALARM_METRICS,
    TABLE_THROTTLE_METRICS,
    TemplateContext,
    alarm_properties,
    alarmed_metric_names,
    api_methods,
    assert_alarm_names_start_with,
    assert_fair_groups_graphed,
    assert_outputs_and_table_keys,
    assert_work_queue_redrives_to_a_kept_dlq,
    function_by_handler,
    function_role_ids,
    mapping_of,
    of_type,
    policy_statements,
    request_schema,
)

STACK = "DecoupledInvocation"
WORKER_TIMEOUT = 30


def actions_on(statements: list[dict[str, Any]], resource_ref: str) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        targets = statement["Resource"]
        targets = targets if isinstance(targets, list) else [targets]
        if any(resource_ref in json.dumps(target) for target in targets):
            actions = statement["Action"]
            found |= set(actions if isinstance(actions, list) else [actions])
    return found


def test_task_queue_redrives_to_an_encrypted_dlq_and_outlasts_its_consumer(
    resources: dict[str, Any],
) -> None:
    assert_work_queue_redrives_to_a_kept_dlq(resources, min_visibility_seconds=6 * WORKER_TIMEOUT)


def test_every_queue_refuses_requests_without_tls(
    template: Template, resources: dict[str, Any]
) -> None:
    queue_ids = set(of_type(resources, "AWS::SQS::Queue"))
    secured = set()
    for policy in of_type(resources, "AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ):
            secured |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert secured == queue_ids


def test_worker_consumes_with_partial_batch_responses_and_bounded_concurrency(
    template: Template, resources: dict[str, Any]
) -> None:
    worker_id, _ = function_by_handler(resources, "job_worker.handler")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": worker_id},
            "BatchSize": 2,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 5},
            "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("TaskQueue"), "Arn"]},
        },
    )


def test_a_batch_of_the_longest_jobs_fits_in_the_worker_timeout(resources: dict[str, Any]) -> None:
    """A worker that times out fails its whole batch, finished jobs included ("If your
    function throws an exception, the entire batch is considered a complete failure",
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html), and
    each failed receive brings a valid job closer to the DLQ. So batch size x (longest
    job + its overhead) must fit in the timeout, and the worker's start budget must cover
    the longest job the API accepts."""
    # GIVEN the worker, its queue mapping and the POST body schema, as deployed
    _, worker = function_by_handler(resources, "job_worker.handler")
    mapping = mapping_of(resources, "job_worker.handler")
    post = next(m for m in api_methods(resources) if m["HttpMethod"] == "POST")
    longest_job_ms = request_schema(resources, post)["properties"]["duration_ms"]["maximum"]
    budget_ms = int(worker["Properties"]["Environment"]["Variables"]["JOB_BUDGET_MS"])
    timeout_ms = worker["Properties"]["Timeout"] * 1000

    # THEN the worker starts a job only with time for the longest one and its overhead
    assert budget_ms > longest_job_ms
    # AND a full batch of the longest jobs ends before the timeout
    assert mapping["BatchSize"] * budget_ms <= timeout_ms
    # AND the numbers are the ones the worker's unit tests drive (batch 2, 30 s, 10 s jobs)
    assert (mapping["BatchSize"], timeout_ms, longest_job_ms) == (2, 30_000, 10_000)


@pytest.mark.parametrize(
    "sizing",
    [
        {"worker_batch_size": 10},
        {"worker_batch_size": 3},
        {"worker_timeout": cdk.Duration.seconds(20)},
    ],
    ids=["ten-jobs-in-30s", "three-jobs-in-30s", "two-jobs-in-20s"],
)
def test_a_batch_that_cannot_end_in_time_is_refused_at_synth(sizing: dict[str, Any]) -> None:
    # GIVEN sizing where a batch of the longest jobs outlasts the worker timeout
    stack = cdk.Stack(cdk.App(), "Scratch")
    stage = StageSettings(app_name="serverless-patterns", stage_name="scratch", persistent=False)

    # WHEN the pattern is built THEN synth stops with the reason
    with pytest.raises(ValueError, match="more than the worker timeout"):
        DecoupledInvocation(stack, "DecoupledInvocation", settings=stage, **sizing)


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"job_timeout": cdk.Duration.seconds(60)}, True),
        ({"job_timeout": cdk.Duration.seconds(209)}, True),
        ({"job_timeout": cdk.Duration.seconds(210)}, False),
        (
            {
                "job_timeout": cdk.Duration.seconds(209),
                "worker_timeout": cdk.Duration.seconds(20),
                "worker_batch_size": 1,
            },
            False,
        ),
    ],
    ids=["a-minute", "a-second-short", "just-enough", "shorter-worker"],
)
def test_a_deadline_before_a_failed_message_can_retry_is_refused_at_synth(
    settings: dict[str, Any], refused: bool
) -> None:
    # GIVEN a job deadline against the queue's retry timing: a failed message comes back
    # after the visibility timeout (6 x the 30 s worker timeout) and runs up to 30 s
    stack = cdk.Stack(cdk.App(), "Scratch")
    stage = StageSettings(app_name="serverless-patterns", stage_name="scratch", persistent=False)

    # WHEN the pattern is built THEN a deadline that ends first stops synth with the reason
    if refused:
        with pytest.raises(ValueError, match="ends before a failed message's retry can"):
            DecoupledInvocation(stack, "DecoupledInvocation", settings=stage, **settings)
    else:
        DecoupledInvocation(stack, "DecoupledInvocation", settings=stage, **settings)


@pytest.mark.parametrize("handler", ["job_api.handler", "job_worker.handler"])
def test_functions_are_hardened(
    template: Template, resources: dict[str, Any], handler: str
) -> None:
    _, function = function_by_handler(resources, handler)
    props = function["Properties"]
    assert props["Runtime"] == "python3.14"
    assert props["Architectures"] == ["arm64"]
    assert "TracingConfig" not in props  # an ephemeral stage: tracing off (test_stage)
    assert props["MemorySize"] == 256 and props["Timeout"] in (10, WORKER_TIMEOUT)
    assert resolve(props["Layers"][0], TemplateContext(dict(template.to_json()))).endswith(
        f"python314-arm64:{POWERTOOLS_LAYER_VERSION}"
    )
    env = props["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "decoupled-invocation"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "serverless-patterns/pr-1"
    assert env["JOB_TABLE_NAME"] == {"Ref": Match.any_value()} or "Ref" in env["JOB_TABLE_NAME"]
    log_group = resources[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == 7


def test_each_function_has_its_own_role(resources: dict[str, Any]) -> None:
    roles = function_role_ids(resources)
    assert len(roles) == len(set(roles)) == 2
    for role_id in roles:
        assert "ManagedPolicyArns" not in resources[role_id]["Properties"]


def test_api_function_may_write_jobs_and_send_tasks_only(resources: dict[str, Any]) -> None:
    _, function = function_by_handler(resources, "job_api.handler")
    statements = policy_statements(resources, function["Properties"]["Role"]["Fn::GetAtt"][0])
    assert actions_on(statements, "JobTable") == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    # The queue URL comes from the environment: no GetQueueUrl or GetQueueAttributes.
    assert actions_on(statements, "TaskQueue") == {"sqs:SendMessage"}


def test_worker_may_update_jobs_and_consume_tasks_only(resources: dict[str, Any]) -> None:
    _, function = function_by_handler(resources, "job_worker.handler")
    statements = policy_statements(resources, function["Properties"]["Role"]["Fn::GetAtt"][0])
    assert actions_on(statements, "JobTable") == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    # What Lambda's poller needs (AWSLambdaSQSQueueExecutionRole), nothing the code skips.
    assert actions_on(statements, "TaskQueue") == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }


def test_every_method_needs_iam_and_post_validates_its_body(
    template: Template, resources: dict[str, Any]
) -> None:
    methods = api_methods(resources)
    assert {m["HttpMethod"] for m in methods} == {"POST", "GET"}
    post = next(m for m in methods if m["HttpMethod"] == "POST")
    schema = request_schema(resources, post)
    assert schema["additionalProperties"] is False and schema["required"] == ["task"]
    template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True}
    )


def test_api_stage_logs_json_traces_and_throttles_per_method(resources: dict[str, Any]) -> None:
    (stage,) = of_type(resources, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    access_log = json.loads(props["AccessLogSetting"]["Format"])
    assert access_log["requestId"] == "$context.requestId" and "status" in access_log
    assert props["TracingEnabled"] is True
    throttles = {s["ResourcePath"] + " " + s["HttpMethod"]: s for s in props["MethodSettings"]}
    assert throttles["/* *"]["ThrottlingRateLimit"] == 50
    assert throttles["/~1jobs POST"]["ThrottlingRateLimit"] == 10


def test_gateway_errors_are_json_like_the_handlers(resources: dict[str, Any]) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]["ResponseTemplates"]["application/json"]
        for r in of_type(resources, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) >= {"BAD_REQUEST_BODY", "DEFAULT_4XX", "DEFAULT_5XX"}
    assert '"error": "invalid_request"' in responses["BAD_REQUEST_BODY"]


def test_alarms_cover_the_failure_modes_and_notify_the_stage_topic(
    resources: dict[str, Any],
) -> None:
    alarms = alarm_properties(resources)
    watched = alarmed_metric_names(alarms)
    # Lambda errors and throttles, DLQ depth, API 5xx and p99 latency, DynamoDB throttles.
    assert watched >= STANDARD_ALARM_METRICS | TABLE_THROTTLE_METRICS
    assert_alarm_names_start_with(alarms, "pr-1-DecoupledInvocation-")
    for alarm in alarms:
        (action,) = alarm["AlarmActions"]
        assert action["Fn::GetStackOutput"]["StackName"] == "pr-1-Alerts"


def test_dashboard_name_carries_the_stage(resources: dict[str, Any]) -> None:
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == {
        "Fn::Join": ["", ["pr-1-DecoupledInvocation-", {"Ref": "AWS::Region"}]]
    }


def test_the_dashboard_shows_how_fair_queues_share_the_task_queue(
    resources: dict[str, Any],
) -> None:
    # GIVEN the task queue, whose messages carry their caller as MessageGroupId
    # THEN the dashboard graphs its noisy groups and its quiet groups' oldest message
    assert_fair_groups_graphed(resources)


def test_outputs_and_table_keys_are_the_documented_ones(ephemeral: SynthesizedStage) -> None:
    assert_outputs_and_table_keys(
        ephemeral.template_json(STACK),
        {
            "ApiUrl",
            "JobTableName",
            "TaskDeadLetterQueueUrl",
            "TaskQueueUrl",
        },
        [{"job_id": "HASH"}],
    )


def test_jobs_a_worker_finds_timed_out_alarm(any_stage: SynthesizedStage) -> None:
    resources = any_stage.template_json(STACK)["Resources"]
    assert_emitted_metric_alarmed(resources, "JobsTimedOut", handlers=["job_worker.handler"])


def test_a_task_older_than_its_jobs_deadline_alarms(any_stage: SynthesizedStage) -> None:
    # GIVEN the task queue WHEN its oldest task is older than the job timeout (its job
    # can only end TIMED_OUT: the workers stopped or fall behind, with no error) THEN
    # an alarm fires
    resources = any_stage.template_json(STACK)["Resources"]
    _, api = function_by_handler(resources, "job_api.handler")
    job_timeout = int(api["Properties"]["Environment"]["Variables"]["JOB_TIMEOUT_SECONDS"])
    assert_oldest_message_alarmed(resources, max_age_seconds=job_timeout)


def test_stack_matches_its_snapshot(stack_snapshot: Callable[[str], None]) -> None:
    # A template or acknowledgment changes only with a reviewed snapshot update.
    stack_snapshot(STACK)
