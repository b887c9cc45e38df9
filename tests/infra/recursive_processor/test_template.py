"""Assertions on the RecursiveProcessor stack: the properties its behaviour depends on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns

from blocks.stage_settings import StageSettings
from patterns.recursive_processor.construct import RecursiveProcessor
from patterns.recursive_processor.stack import RecursiveProcessorStack
from tests.infra.alarms import assert_emitted_metric_alarmed, assert_event_wait_alarmed
from tests.infra.conftest import SynthesizedStage
from tests.infra.templates import (
    STANDARD_ALARM_METRICS,
    TABLE_THROTTLE_METRICS,
    alarm_properties,
    alarmed_metric_names,
    as_list,
    assert_alarm_names_start_with,
    assert_outputs_and_table_keys,
    of_type,
    policy_statements,
)

STACK = "RecursiveProcessor"
HANDLER = "batch_processor.handler"


def resources_of(stage: SynthesizedStage) -> dict[str, Any]:
    resources: dict[str, Any] = stage.template_json(STACK)["Resources"]
    return resources


def processor(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (match,) = [
        (k, v)
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == HANDLER
    ]
    return match


def data_buckets(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The input and output buckets (not the access log bucket of persistent stages)."""
    buckets = of_type(resources, "AWS::S3::Bucket")
    return {k: v for k, v in buckets.items() if "AccessLog" not in k}


def input_bucket_id(resources: dict[str, Any]) -> str:
    (notification,) = of_type(resources, "Custom::S3BucketNotifications").values()
    bucket_id: str = notification["Properties"]["BucketName"]["Ref"]
    return bucket_id


# --------------------------------------------------------------------------- buckets


def test_buckets_are_encrypted_private_and_tls_only(any_stage: SynthesizedStage) -> None:
    resources = resources_of(any_stage)
    buckets = of_type(resources, "AWS::S3::Bucket")
    assert len(data_buckets(resources)) == 2
    for props in (bucket["Properties"] for bucket in buckets.values()):
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    tls_only = set()
    for policy in of_type(resources, "AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                tls_only.add(policy["Properties"]["Bucket"]["Ref"])
    assert tls_only == set(buckets)


def test_ephemeral_buckets_are_emptied_and_deleted_with_the_stage(
    ephemeral: SynthesizedStage,
) -> None:
    resources = resources_of(ephemeral)
    buckets = of_type(resources, "AWS::S3::Bucket")
    assert all(bucket["DeletionPolicy"] == "Delete" for bucket in buckets.values())
    emptied = {
        r["Properties"]["BucketName"]["Ref"]
        for r in of_type(resources, "Custom::S3AutoDeleteObjects").values()
    }
    assert emptied == set(buckets)
    # no access log bucket that late log deliveries could refill after it was emptied
    assert all("LoggingConfiguration" not in b["Properties"] for b in buckets.values())


def test_persistent_buckets_are_kept_and_log_their_access(persistent: SynthesizedStage) -> None:
    resources = resources_of(persistent)
    assert of_type(resources, "Custom::S3AutoDeleteObjects") == {}
    buckets = of_type(resources, "AWS::S3::Bucket")
    assert all(bucket["DeletionPolicy"] == "Retain" for bucket in buckets.values())
    (log_bucket_id,) = set(buckets) - set(data_buckets(resources))
    for bucket in data_buckets(resources).values():
        logging = bucket["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": log_bucket_id}


def test_only_persistent_data_buckets_keep_object_versions(any_stage: SynthesizedStage) -> None:
    """A persistent stage can undo an overwrite or a delete (and S3 notifies every write
    of a versioned bucket); an ephemeral one is not versioned, since S3 may answer GETs
    of new objects with 404 for up to 15 minutes after versioning is first enabled."""
    persistent = any_stage.name == "prod"
    for bucket in data_buckets(resources_of(any_stage)).values():
        props = bucket["Properties"]
        versioned = props.get("VersioningConfiguration") == {"Status": "Enabled"}
        assert versioned == persistent
        (rule,) = props["LifecycleConfiguration"]["Rules"]
        assert ("NoncurrentVersionExpiration" in rule) == persistent


def test_only_new_ndjson_objects_under_the_prefix_notify_the_processor(
    resources: dict[str, Any],
) -> None:
    function_id, _ = processor(resources)
    (notification,) = of_type(resources, "Custom::S3BucketNotifications").values()
    (config,) = notification["Properties"]["NotificationConfiguration"][
        "LambdaFunctionConfigurations"
    ]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["LambdaFunctionArn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    rules = {rule["Name"]: rule["Value"] for rule in config["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "incoming/", "suffix": ".ndjson"}
    (permission,) = [
        p
        for p in of_type(resources, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "s3.amazonaws.com"
    ]
    assert permission["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert permission["Properties"]["SourceArn"] == {
        "Fn::GetAtt": [input_bucket_id(resources), "Arn"]
    }
    assert permission["Properties"]["SourceAccount"] == {"Ref": "AWS::AccountId"}


# --------------------------------------------------------------------------- the function


def test_processor_allows_recursion_and_configures_its_hops(resources: dict[str, Any]) -> None:
    _, function = processor(resources)
    props = function["Properties"]
    assert props["RecursiveLoop"] == "Allow"
    assert props["Runtime"] == "python3.14" and props["Architectures"] == ["arm64"]
    assert props["Timeout"] == 300 and props["MemorySize"] == 512
    assert "TracingConfig" not in props  # an ephemeral stage: tracing off (test_stage)
    env = props["Environment"]["Variables"]
    assert int(env["SAFETY_MARGIN_MS"]) == 20_000 < props["Timeout"] * 1000
    assert env["MAX_HOPS"] == "50" and env["RECORD_WORK_MS"] == "0"
    assert env["OUTPUT_PREFIX"] == "runs/"
    assert env["RUN_TABLE_NAME"] == {"Ref": env["RUN_TABLE_NAME"]["Ref"]}
    assert env["POWERTOOLS_SERVICE_NAME"] == "recursive-processor"


def test_processor_may_invoke_only_itself(resources: dict[str, Any]) -> None:
    function_id, function = processor(resources)
    invoke_statements = [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in as_list(statement["Action"])
    ]
    assert invoke_statements == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [function_id, "Arn"]},
            "Sid": "InvokeItselfOnly",
        }
    ]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert invoke_statements[0] in policy_statements(resources, role_id)


def test_self_invoke_grant_creates_no_dependency_cycle(resources: dict[str, Any]) -> None:
    # The function waits for its default policy only; the self-invoke policy waits for
    # the function, and the bucket notification waits for the self-invoke policy.
    _, function = processor(resources)
    (self_invoke_id,) = [
        k
        for k, v in of_type(resources, "AWS::IAM::Policy").items()
        if "lambda:InvokeFunction" in json.dumps(v["Properties"]["PolicyDocument"])
    ]
    assert self_invoke_id not in function.get("DependsOn", [])
    (notification,) = of_type(resources, "Custom::S3BucketNotifications").values()
    assert self_invoke_id in notification["DependsOn"]


def test_async_failures_go_to_an_encrypted_failure_queue(resources: dict[str, Any]) -> None:
    function_id, _ = processor(resources)
    (config,) = of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
    props = config["Properties"]
    assert props["FunctionName"] == {"Ref": function_id}
    assert props["MaximumRetryAttempts"] == 2
    queue_id = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    queue = resources[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_run_api_reads_a_run_stalled_only_once_no_hop_can_come(
    resources: dict[str, Any],
) -> None:
    # GIVEN the processor's timeout and maximum event age, and the run API's setting
    _, function = processor(resources)
    (config,) = of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
    (api_function,) = [
        f
        for f in of_type(resources, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "run_api.handler"
    ]
    variables = api_function["Properties"]["Environment"]["Variables"]
    # THEN a run reads stalled only after two full windows of a hop's event (its age
    # limit and a last attempt's timeout: a duplicate of the last hop may re-send the
    # next one just as late) and a margin
    window = config["Properties"]["MaximumEventAgeInSeconds"] + function["Properties"]["Timeout"]
    assert int(variables["RUN_STALLED_AFTER_SECONDS"]) == 2 * window + 15 * 60 == 8_700


def test_processor_permissions_are_scoped(resources: dict[str, Any]) -> None:
    _, function = processor(resources)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
    statements = policy_statements(resources, role_id)
    for statement in statements:
        assert not any("*" in action for action in as_list(statement["Action"]))
    by_action = {
        action: statement["Resource"]
        for statement in statements
        for action in as_list(statement["Action"])
    }
    input_id = input_bucket_id(resources)
    assert by_action["s3:GetObject"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [input_id, "Arn"]}, "/incoming/*"]]
    }
    (output_id,) = set(data_buckets(resources)) - {input_id}
    assert by_action["s3:PutObject"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [output_id, "Arn"]}, "/runs/*"]]
    }
    s3_actions = {a for a in by_action if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    dynamodb_actions = {a for a in by_action if a.startswith("dynamodb:")}
    assert dynamodb_actions == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}


def test_processor_may_list_the_input_bucket_so_a_deleted_object_reads_as_404(
    resources: dict[str, Any],
) -> None:
    """S3 answers a GetObject of a missing key with 404 NoSuchKey only if the caller has
    s3:ListBucket on the bucket, otherwise with 403 AccessDenied
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions).
    The grant carries no condition: a GetObject request has no ``s3:prefix``, and IAM
    treats a condition on a key absent from the request as false
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html),
    so a prefix-conditioned grant would leave the 403."""
    # GIVEN the processor's role
    _, function = processor(resources)
    statements = policy_statements(resources, function["Properties"]["Role"]["Fn::GetAtt"][0])

    # WHEN its s3:ListBucket statements are read
    listing = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]

    # THEN exactly one allows it, on the input bucket itself and on nothing else
    (statement,) = listing
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["s3:ListBucket"]
    assert statement["Resource"] == {"Fn::GetAtt": [input_bucket_id(resources), "Arn"]}
    # AND no condition can keep it from the check S3 makes for a GetObject
    assert "Condition" not in statement


# --------------------------------------------------------------------------- runs and alarms


def test_run_table_keys_runs_and_expires_them(any_stage: SynthesizedStage) -> None:
    (table,) = of_type(resources_of(any_stage), "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "run_id", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    persistent = any_stage.name == "prod"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": persistent}
    assert table["DeletionPolicy"] == ("Retain" if persistent else "Delete")


def test_run_api_is_iam_authorized_and_may_only_read_runs(resources: dict[str, Any]) -> None:
    (method,) = of_type(resources, "AWS::ApiGateway::Method").values()
    props = method["Properties"]
    assert (props["HttpMethod"], props["AuthorizationType"]) == ("GET", "AWS_IAM")
    assert props["RequestParameters"] == {"method.request.path.run_id": True}
    (function,) = [
        f
        for f in of_type(resources, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "run_api.handler"
    ]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = {
        action
        for statement in policy_statements(resources, role_id)
        for action in as_list(statement["Action"])
    }
    assert actions - {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
    }


def test_alarms_cover_errors_throttles_failures_and_the_table(resources: dict[str, Any]) -> None:
    alarms = alarm_properties(resources)
    watched = alarmed_metric_names(alarms)
    assert watched >= STANDARD_ALARM_METRICS | TABLE_THROTTLE_METRICS
    # The metric the processor emits: its namespace, and its service (the pattern
    # folder's name, so a copied folder's alarm follows its own functions)
    assert_emitted_metric_alarmed(resources, "RunsFailed", handlers=["batch_processor.handler"])
    # Hops and uploads reach the processor asynchronously: a backlog alarms
    assert_event_wait_alarmed(resources, handler="batch_processor.handler")
    assert_alarm_names_start_with(alarms, "pr-1-RecursiveProcessor-")


def test_input_prefix_output_names_the_incoming_prefix(
    ephemeral: SynthesizedStage,
) -> None:
    outputs = ephemeral.template_json(STACK)["Outputs"]
    assert outputs["InputPrefix"]["Value"] == "incoming/"


@pytest.mark.parametrize(
    "settings",
    [
        {"safety_margin": cdk.Duration.minutes(5)},
        {"output_prefix": "runs"},
        {"input_prefix": ""},
        {"max_hops": 0},
        {"max_concurrency": 0},
    ],
    ids=[
        "margin-not-under-timeout",
        "output-prefix-not-a-folder",
        "no-input-prefix",
        "no-hops",
        "reserved-to-zero",
    ],
)
def test_settings_that_cannot_work_are_refused_at_synth(settings: dict[str, Any]) -> None:
    stack = cdk.Stack(cdk.App(), "Scratch")
    stage = StageSettings(app_name="serverless-patterns", stage_name="scratch", persistent=False)
    with pytest.raises(ValueError):
        RecursiveProcessor(stack, "RecursiveProcessor", settings=stage, **settings)


def test_a_stage_caps_concurrent_chains_by_its_tuning() -> None:
    # GIVEN a stage whose cdk.json tuning caps the processor at 3 concurrent invocations
    settings = StageSettings(
        app_name="serverless-patterns",
        stage_name="capped",
        persistent=False,
        tuning={STACK: {"max_concurrency": 3}},
    )
    # WHEN the pattern's stack is built for it
    stack = RecursiveProcessorStack(cdk.App(), settings=settings, alarm_topic=_scratch_topic())
    # THEN the processor reserves exactly that, and the run API is left uncapped
    functions = [
        child
        for child in stack.node.find_all()
        if isinstance(child, lambda_.CfnFunction) and child.handler is not None
    ]
    reserved = {f.handler: f.reserved_concurrent_executions for f in functions}
    assert reserved[HANDLER] == 3
    assert reserved["run_api.handler"] is None


def _scratch_topic() -> sns.ITopic:
    scope = cdk.Stack(cdk.App(), "Topics")
    return sns.Topic.from_topic_arn(scope, "Topic", "arn:aws:sns:us-east-1:111111111111:t")


def test_outputs_and_table_keys_are_the_documented_ones(ephemeral: SynthesizedStage) -> None:
    assert_outputs_and_table_keys(
        ephemeral.template_json(STACK),
        {
            "ApiUrl",
            "FailureQueueUrl",
            "InputBucketName",
            "InputPrefix",
            "OutputBucketName",
            "OutputPrefix",
            "ProcessorFunctionName",
            "RunTableName",
        },
        [{"run_id": "HASH"}],
    )


def test_stack_matches_its_snapshot(stack_snapshot: Callable[[str], None]) -> None:
    # A template or acknowledgment changes only with a reviewed snapshot update.
    stack_snapshot(STACK)
