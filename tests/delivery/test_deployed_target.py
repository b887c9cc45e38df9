"""The AWS target of the e2e suite, against a moto server standing in for AWS.

A stage ``pr-42`` is "deployed" as CloudFormation stacks with the outputs the e2e tests
read; its API URL points at a loopback server that recomputes SigV4 signatures. What
cannot be checked here: AWS's own behaviour (IAM, API Gateway, Lambda running code).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from localstage.deployed import DeployedTarget, StackNotFoundError, TargetConfigurationError
from localstage.target import WaitTimeoutError
from tests.delivery.conftest import REGION, SigV4Checker
from tests.support.e2e_target import deployed_target_from_options

STAGE = "pr-42"
STACK = "DecoupledInvocation"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _template(api_url: str) -> dict[str, Any]:
    """A small stand-in of a pattern stack: a queue, a bucket, a table and their outputs."""
    return {
        "Resources": {
            "TaskQueue": {"Type": "AWS::SQS::Queue"},
            "InputBucket": {"Type": "AWS::S3::Bucket"},
            "JobTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "job_id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
                },
            },
        },
        "Outputs": {
            "ApiUrl": {"Value": api_url},
            "TaskQueueUrl": {"Value": {"Ref": "TaskQueue"}},
            "InputBucketName": {"Value": {"Ref": "InputBucket"}},
            "JobTableName": {"Value": {"Ref": "JobTable"}},
        },
    }


@pytest.fixture(scope="module")
def deployed(
    moto_endpoint: str, aws_session: boto3.Session, sigv4_checker: SigV4Checker
) -> dict[str, str]:
    """Stage pr-42's stack on the stand-in (and another stage's, which must not be used)."""
    cloudformation = aws_session.client("cloudformation", endpoint_url=moto_endpoint)
    for stage, api_url in ((STAGE, sigv4_checker.url), ("pr-7", "http://127.0.0.1:9/other/")):
        cloudformation.create_stack(
            StackName=f"{stage}-{STACK}", TemplateBody=json.dumps(_template(api_url))
        )
    (stack,) = cloudformation.describe_stacks(StackName=f"{STAGE}-{STACK}")["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


@pytest.fixture
def target(
    moto_endpoint: str, aws_session: boto3.Session, deployed: dict[str, str]
) -> DeployedTarget:
    return DeployedTarget(
        STAGE, session=aws_session, endpoint_url=moto_endpoint, wait_scale=1.0, min_interval=0
    )


# discovery --------------------------------------------------------------------------
def test_outputs_are_found_by_stage_name(target: DeployedTarget, deployed: dict[str, str]) -> None:
    # WHEN the e2e tests ask for outputs by pattern name
    found = {name: target.output(STACK, name) for name in deployed}

    # THEN they are the outputs of `pr-42-DecoupledInvocation`, not another stage's
    assert found == deployed
    assert "/other/" not in found["ApiUrl"]
    assert found["TaskQueueUrl"].rsplit("/", 1)[-1].startswith(f"{STAGE}-{STACK}-")


def test_a_stage_that_is_not_deployed_is_a_clear_error(
    moto_endpoint: str, aws_session: boto3.Session, deployed: dict[str, str]
) -> None:
    # GIVEN a target for a stage that has no stacks
    target = DeployedTarget("pr-404", session=aws_session, endpoint_url=moto_endpoint)

    # WHEN an output is asked for THEN the error names the stack, region and the fix
    with pytest.raises(StackNotFoundError) as raised:
        target.output(STACK, "ApiUrl")
    assert str(raised.value) == (
        f"stack pr-404-{STACK} does not exist in {REGION}: is stage pr-404 deployed there "
        "(make deploy STAGE=pr-404)?"
    )


def test_a_missing_output_lists_the_outputs_there_are(target: DeployedTarget) -> None:
    with pytest.raises(LookupError, match="has no output 'Nope' \\(it has ApiUrl, InputBucket"):
        target.output(STACK, "Nope")


def test_physical_ids_come_from_the_stack_resources(
    target: DeployedTarget, deployed: dict[str, str]
) -> None:
    # WHEN a resource is looked up by its logical id prefix
    bucket = target.physical_id(STACK, "InputBucket")

    # THEN it is the stack's resource (the bucket its output names), and an ambiguous or
    # unknown prefix is an error
    assert bucket == deployed["InputBucketName"]
    with pytest.raises(LookupError, match="found 0"):
        target.physical_id(STACK, "Missing")


# signing ----------------------------------------------------------------------------
def test_api_calls_are_sigv4_signed_for_execute_api_in_the_stage_region(
    target: DeployedTarget, sigv4_checker: SigV4Checker
) -> None:
    # GIVEN the stage's API (a server that recomputes SigV4 signatures)
    api = target.output(STACK, "ApiUrl")
    sigv4_checker.exchanges.clear()

    # WHEN the target POSTs a JSON body with a header and GETs a path with a query
    posted = target.call_api(
        api, "POST", "jobs", json_body={"task": "t"}, headers={"Idempotency-Key": "k-1"}
    )
    got = target.call_api(api, "GET", "jobs/abc?limit=3&cursor=x")

    # THEN both carry a valid signature by the session's credentials, for execute-api in
    # the session's region, and the body went as JSON
    assert (posted.status, posted.body) == (200, {"valid": True, "message": "ok"})
    assert (got.status, got.body["valid"]) == (200, True)
    post, get = sigv4_checker.exchanges
    assert (post.method, post.path, get.path) == (
        "POST",
        "/api/jobs",
        "/api/jobs/abc?limit=3&cursor=x",
    )
    assert json.loads(post.body) == {"task": "t"}
    assert post.headers["content-type"] == "application/json"
    assert f"/{REGION}/execute-api/aws4_request" in post.headers["authorization"]


def test_an_unsigned_call_carries_no_signature(
    target: DeployedTarget, sigv4_checker: SigV4Checker
) -> None:
    sigv4_checker.exchanges.clear()
    response = target.call_api(target.output(STACK, "ApiUrl"), "GET", "jobs/x", signed=False)
    assert response.status == 403
    assert response.body["message"] == "Missing Authentication Token"
    assert not sigv4_checker.exchanges[0].signed


def test_a_signature_by_other_credentials_is_refused(
    moto_endpoint: str, deployed: dict[str, str], sigv4_checker: SigV4Checker
) -> None:
    # GIVEN a target whose credentials are not the ones the API expects
    session = boto3.Session(
        aws_access_key_id="AKIDDELIVERYTESTS", aws_secret_access_key="wrong", region_name=REGION
    )
    target = DeployedTarget(STAGE, session=session, endpoint_url=moto_endpoint)

    # WHEN it calls the API THEN the recomputed signature does not match
    response = target.call_api(target.output(STACK, "ApiUrl"), "GET", "jobs/x")
    assert response.status == 403
    assert "does not match" in response.body["message"]


def test_a_throttled_call_is_retried_until_it_goes_through(
    target: DeployedTarget, sigv4_checker: SigV4Checker
) -> None:
    # GIVEN an API that throttles the next three requests (as API Gateway answers a burst
    # past a stage's or method's limit: 429, before the integration runs)
    sigv4_checker.exchanges.clear()
    sigv4_checker.throttle_next = 3

    # WHEN the target POSTs once
    response = target.call_api(target.output(STACK, "ApiUrl"), "POST", "jobs", json_body={})

    # THEN it waited and sent the same request again until it went through, each attempt
    # signed anew
    assert (response.status, response.body["valid"]) == (200, True)
    assert [exchange.method for exchange in sigv4_checker.exchanges] == ["POST"] * 4
    assert all(exchange.valid for exchange in sigv4_checker.exchanges)


def test_throttling_that_does_not_end_is_answered_after_bounded_retries(
    target: DeployedTarget, sigv4_checker: SigV4Checker
) -> None:
    # GIVEN an API that throttles every request, and a target allowed two retries
    sigv4_checker.exchanges.clear()
    sigv4_checker.throttle_next = 100
    target.throttle_retries = 2

    # WHEN the target calls it THEN it gives up after three attempts and shows the 429
    response = target.call_api(target.output(STACK, "ApiUrl"), "GET", "jobs/x")
    sigv4_checker.throttle_next = 0
    assert response.status == 429
    assert len(sigv4_checker.exchanges) == 3


# waiting ----------------------------------------------------------------------------
def test_a_wait_returns_as_soon_as_its_condition_holds(target: DeployedTarget) -> None:
    calls: list[int] = []

    def third_time() -> str | None:
        calls.append(1)
        return "done" if len(calls) == 3 else None

    assert target.wait_for("the third call", third_time, timeout=5, interval=0.01) == "done"
    assert len(calls) == 3


def test_a_wait_is_bounded_by_its_scaled_timeout(
    moto_endpoint: str, aws_session: boto3.Session
) -> None:
    # GIVEN a target that allows three times the local timeouts, checking every 0.05 s
    target = DeployedTarget(
        STAGE, session=aws_session, endpoint_url=moto_endpoint, wait_scale=3, min_interval=0.05
    )
    calls: list[float] = []

    # WHEN a condition never holds
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError, match=r"timed out after 0\.3 s waiting for nothing"):
        target.wait_for("nothing", lambda: calls.append(time.monotonic()), timeout=0.1, interval=0)
    elapsed = time.monotonic() - started

    # THEN it gave up after 3 x 0.1 s, having checked at most every 0.05 s
    assert 0.3 <= elapsed < 2.0
    assert 2 <= len(calls) <= 8


# queues, buckets, tables, functions -------------------------------------------------
def test_queue_helpers_send_count_copy_and_read(target: DeployedTarget) -> None:
    # GIVEN the stage's task queue with two messages
    queue = target.output(STACK, "TaskQueueUrl")
    target.send_message(queue, "one")
    target.send_message(queue, "two")
    assert target.queue_depth(queue) == 2

    # WHEN every message is duplicated
    copied = target.duplicate_messages(queue)

    # THEN there are four, each body twice, and reading deletes them
    assert copied == 2
    assert target.queue_depth(queue) == 4
    assert sorted(target.receive_messages(queue)) == ["one", "one", "two", "two"]
    assert target.queue_depth(queue) == 0


def test_uploads_go_to_the_stage_bucket(target: DeployedTarget) -> None:
    bucket = target.output(STACK, "InputBucketName")
    target.put_object(bucket, "input/b.ndjson", b'{"n": 2}\n')
    target.put_object(bucket, "input/a.ndjson", b'{"n": 1}\n')

    assert target.list_objects(bucket, "input/") == ["input/a.ndjson", "input/b.ndjson"]
    assert target.get_object(bucket, "input/a.ndjson") == b'{"n": 1}\n'
    assert target.get_object(bucket, "input/missing") is None


def test_table_items_are_read_back_as_python_values(target: DeployedTarget) -> None:
    # GIVEN an item written as a worker would
    table = target.output(STACK, "JobTableName")
    target.client("dynamodb").put_item(
        TableName=table, Item={"job_id": {"S": "j-1"}, "attempts": {"N": "2"}}
    )

    # WHEN it is read THEN numbers are numbers and a missing key is None
    assert target.get_item(table, {"job_id": "j-1"}) == {"job_id": "j-1", "attempts": 2}
    assert target.get_item(table, {"job_id": "nope"}) is None
    assert target.scan_items(table) == [{"job_id": "j-1", "attempts": 2}]


@pytest.fixture
def worker(target: DeployedTarget) -> Iterator[str]:
    """A function consuming the task queue through an event source mapping."""
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    iam, lambda_ = target.client("iam"), target.client("lambda")
    role = iam.create_role(RoleName="worker-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    name = f"{STAGE}-{STACK}-Worker"
    lambda_.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=30,
        Environment={"Variables": {"RECORD_WORK_MS": "1"}},
    )
    queue_arn = target.client("sqs").get_queue_attributes(
        QueueUrl=target.output(STACK, "TaskQueueUrl"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    mapping = lambda_.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name)
    yield name
    lambda_.delete_event_source_mapping(UUID=mapping["UUID"])
    lambda_.delete_function(FunctionName=name)
    iam.delete_role(RoleName="worker-role")


def test_queue_consumers_are_paused_and_resumed_through_their_mapping(
    target: DeployedTarget, worker: str
) -> None:
    # GIVEN the task queue and the mapping that feeds the worker
    queue = target.output(STACK, "TaskQueueUrl")
    lambda_ = target.client("lambda")

    def states() -> list[str]:
        arn = target._queue_arn(queue)
        mappings = lambda_.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
        return [str(mapping["State"]) for mapping in mappings]

    # WHEN its consumers are paused, then resumed
    target.set_queue_consumers_enabled(queue, False)
    paused = states()
    target.set_queue_consumers_enabled(queue, True)

    # THEN the mapping was Disabled, then Enabled again
    assert (paused, states()) == (["Disabled"], ["Enabled"])


def test_pausing_a_queue_nothing_consumes_is_an_error(target: DeployedTarget) -> None:
    queue = target.client("sqs").create_queue(QueueName="unconsumed")["QueueUrl"]
    with pytest.raises(LookupError, match="no event source mapping consumes"):
        target.set_queue_consumers_enabled(queue, False)


def test_functions_are_invoked_and_described(target: DeployedTarget, worker: str) -> None:
    # moto (without Docker) answers an Invoke with its payload; the target decodes it
    assert target.invoke_function(worker, {"Records": []}) == {"Records": []}
    configuration = target.function_configuration(worker)
    assert configuration == {"Timeout": 30, "Environment": {"Variables": {"RECORD_WORK_MS": "1"}}}


def test_schedules_are_listed_by_group(target: DeployedTarget, worker: str) -> None:
    scheduler = target.client("scheduler")
    scheduler.create_schedule_group(Name=f"{STAGE}-schedules")
    function_arn = target.client("lambda").get_function(FunctionName=worker)["Configuration"][
        "FunctionArn"
    ]
    scheduler.create_schedule(
        Name="s-1",
        GroupName=f"{STAGE}-schedules",
        ScheduleExpression="at(2030-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn, "RoleArn": function_arn},
    )
    assert target.list_schedules(f"{STAGE}-schedules") == ["s-1"]


def test_a_bus_is_observed_through_a_temporary_rule_and_queue(target: DeployedTarget) -> None:
    # GIVEN a stage's bus
    bus = target.client("events").create_event_bus(Name=f"{STAGE}-bus")["EventBusArn"]
    bus_name = bus.rsplit("/", 1)[-1]

    # WHEN the target subscribes, then unsubscribes
    queue = target.subscribe_to_bus(bus_name, {"detail-type": ["AccountCreated"]})
    rules = target.client("events").list_rules(EventBusName=bus_name)["Rules"]
    target.unsubscribe_from_bus(bus_name, queue)

    # THEN an observer rule with a queue target existed, and nothing of it is left
    assert [rule["Name"] for rule in rules] == [queue.rsplit("/", 1)[-1]]
    assert rules[0]["Name"].startswith(f"bus-observer-{STAGE}-")
    assert target.client("events").list_rules(EventBusName=bus_name)["Rules"] == []
    urls = target.client("sqs").list_queues(QueueNamePrefix="bus-observer-").get("QueueUrls", [])
    assert urls == []


def test_observers_a_killed_run_left_are_swept(target: DeployedTarget) -> None:
    # GIVEN the stage's bus with an observer no run removed (the run was killed), and
    # another stage's observer on its own bus
    events, sqs = target.client("events"), target.client("sqs")
    bus_name = f"{STAGE}-EventSourcing-Bus"
    other_bus = "pr-7-EventSourcing-Bus"
    for name in (bus_name, other_bus):
        events.create_event_bus(Name=name)
    left = target.subscribe_to_bus(bus_name, {"source": ["bank"]})
    other_stage = DeployedTarget(
        "pr-7", session=target.session, endpoint_url=target.endpoint_url, min_interval=0
    )
    other = other_stage.subscribe_to_bus(other_bus, {"source": ["bank"]})

    # WHEN a sweep keeps anything younger than an hour THEN the fresh observer stays
    assert target.sweep_observers(older_than=3600) == []

    # WHEN the sweep before a destroy removes every age
    deleted = target.sweep_observers(older_than=0)

    # THEN the stage's rule and queue are gone, and the other stage's observer is not
    name = left.rsplit("/", 1)[-1]
    assert deleted == [name, name]
    assert events.list_rules(EventBusName=bus_name)["Rules"] == []
    remaining = sqs.list_queues(QueueNamePrefix="bus-observer-").get("QueueUrls", [])
    assert remaining == [other]
    other_stage.unsubscribe_from_bus(other_bus, other)
    for name in (bus_name, other_bus):
        events.delete_event_bus(Name=name)


# no AWS unless asked ---------------------------------------------------------------
class _NoAws:
    """Stands in for boto3.Session: building one means something tried to reach AWS."""

    built: list[tuple[Any, ...]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _NoAws.built.append(args)
        raise AssertionError("a boto3 session was built")


def test_the_local_target_builds_no_aws_session(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN boto3 sessions that record being built
    monkeypatch.setattr(boto3, "Session", _NoAws)

    # WHEN the options ask for the local stage (the default)
    deployed = deployed_target_from_options("local", None, None)

    # THEN there is no deployed target and no session was built
    assert deployed is None
    assert _NoAws.built == []


@pytest.mark.parametrize(
    ("target", "stage", "wait_scale", "message"),
    [
        ("aws", None, None, "--target aws needs --stage NAME (e.g. --stage pr-42)"),
        ("local", "pr-42", None, "--stage and --wait-scale need --target aws"),
        ("aws", "Bad Name", None, "invalid stage name 'Bad Name'"),
        ("aws", "pr-42", 0.0, "the wait scale must be positive, got 0"),
    ],
)
def test_options_that_do_not_fit_are_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    stage: str | None,
    wait_scale: float | None,
    message: str,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDDELIVERYTESTS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_REGION", REGION)
    with pytest.raises(pytest.UsageError) as raised:
        deployed_target_from_options(target, stage, wait_scale)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def _no_aws_environment(home: Path) -> dict[str, str]:
    """This process's environment without any AWS credentials, config or metadata."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_a_session_without_credentials_cannot_build_a_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an environment without AWS credentials, config files or instance metadata
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in _no_aws_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    session = boto3.Session(region_name=REGION)

    # WHEN a target is built THEN it fails at once with what to set
    with pytest.raises(TargetConfigurationError, match=r"^no AWS credentials for --target aws"):
        DeployedTarget(STAGE, session=session)


def test_pytest_with_target_aws_and_no_credentials_stops_with_one_line(tmp_path: Path) -> None:
    # GIVEN an environment with no AWS credentials at all
    env = _no_aws_environment(tmp_path)

    # WHEN the e2e suite is started against a deployed stage
    started = time.monotonic()
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "tests/e2e", "--target", "aws", "--stage", STAGE),
            *("--collect-only", "-p", "no:cacheprovider", "-p", "no:xdist"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # THEN pytest stops with a usage error of one line, before collecting anything,
    # without waiting on the network
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert errors == [
        "ERROR: no AWS credentials for --target aws: set AWS_PROFILE or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (in CI: aws-actions/configure-aws-credentials)"
    ]
    assert time.monotonic() - started < 60
