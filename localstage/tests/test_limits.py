"""Limits and shapes AWS enforces, which localstage enforces too (one test per rule).

Each docstring states the AWS behaviour and cites the AWS page it comes from.
"""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from botocore.exceptions import ClientError
from stage_queues import take, wait_until

from localstage.deploy import Resource
from localstage.sources import InvalidMappingError
from localstage.sources.dynamodb_streams import DynamoDBStreamMapping, first_failed_index
from localstage.sources.event_patterns import matches, parse
from localstage.sources.sqs import SqsEventSourceMapping, failed_message_ids
from localstage.stage import LocalStage

MB = 1024 * 1024

# ---------------------------------------------------------------------- Lambda


def test_the_function_code_directory_is_read_only(async_stage: LocalStage) -> None:
    """Lambda's execution environment has the function code in /var/task (and layers
    in /opt), both read-only; only /tmp is writable.
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html
    """
    function = async_stage.function("Limited")
    code = function.spec.code_dir

    # WHEN the handler writes into its own code folder, and then into /tmp
    in_code = function.invoke({"action": "write", "path": str(code / "state.json")})
    relative = function.invoke({"action": "write", "path": "notes.txt"})
    in_tmp = function.invoke({"action": "write", "path": "/tmp/localstage-limits-probe"})

    # THEN the code folder refuses as a read-only file system does; /tmp accepts
    assert in_code.payload["errno"] == errno.EROFS, in_code.payload
    assert relative.payload["errno"] == errno.EROFS, relative.payload  # cwd is the code
    assert in_tmp.payload == {"ok": True}
    assert not (code / "state.json").exists()


def test_no_file_can_outgrow_the_ephemeral_storage(async_stage: LocalStage) -> None:
    """/tmp has the function's EphemeralStorage size, 512 MB by default (up to
    10,240 MB); a write past it fails.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html
    """
    function = async_stage.function("Limited")

    # WHEN a file in /tmp would grow past 512 MB (a sparse write: nothing is stored)
    too_big = function.invoke(
        {"action": "write", "path": "/tmp/localstage-big-probe", "offset": 512 * MB}
    )
    fits = function.invoke(
        {"action": "write", "path": "/tmp/localstage-big-probe", "offset": 512 * MB - 1}
    )

    # THEN the write fails (EFBIG here: see _worker._limit_storage) and a smaller one works
    assert too_big.payload["ok"] is False and too_big.payload["errno"] == errno.EFBIG
    assert fits.payload == {"ok": True}
    assert function.spec.ephemeral_storage_mb == 512  # the template's default


def test_memory_past_the_function_s_memory_size_stops_the_environment(
    async_stage: LocalStage,
) -> None:
    """A function may use up to its MemorySize (128 MB by default); an environment that
    uses more is stopped and the invocation fails (Runtime.OutOfMemory), the next one
    starting cold.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
    """
    function = async_stage.function("Limited")
    assert function.spec.memory_mb == 128

    # WHEN an invocation holds 200 MB, then the next one is small
    hog = function.invoke({"action": "allocate", "mb": 200})
    after = function.invoke({"action": "allocate", "mb": 1})

    # THEN the first failed out of memory and the next ran in a new environment
    assert hog.error is not None and hog.error["errorType"] == "Runtime.OutOfMemory", hog
    assert after.error is None and after.cold_start


def test_a_synchronous_invoke_past_the_reserved_concurrency_is_throttled_with_429(
    async_stage: LocalStage, tmp_path: Path
) -> None:
    """Reserved concurrency caps a function's concurrent executions; past it Invoke
    fails with 429 TooManyRequestsException (synchronous callers get the error;
    asynchronous events and event source mappings are retried).
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
    """
    reserved = async_stage.function("Reserved")
    assert reserved.spec.reserved_concurrency == 1
    reserved.invoke({"action": "sleep", "seconds": 0})  # warm: no cold-start wait below
    release = tmp_path / "release"
    busy = threading.Thread(
        target=reserved.invoke,
        args=({"action": "hold", "path": str(release), "seconds": HOLD_SECONDS},),
        daemon=True,
    )

    # GIVEN its one environment busy (until released, however late the threads run)
    invocations = reserved.invocations
    busy.start()
    try:
        _wait("the busy invocation to start", lambda: reserved.invocations > invocations)
        # WHEN handler code invokes it synchronously
        result = async_stage.function("Caller").invoke(
            {"target": reserved.spec.name, "payload": {"action": "sleep", "seconds": 0}}
        )
    finally:
        release.touch()
        busy.join()

    # THEN the call is throttled at once
    assert result.payload["error"] == "TooManyRequestsException", result.payload


#: How long a test may hold a function's only environment busy (under its 10 s timeout):
#: the holding invocation ends as soon as the test releases it.
HOLD_SECONDS = 8


def _wait(description: str, condition: Any, timeout: float = 30) -> Any:
    return wait_until(description, condition, timeout)


def _take(stage: LocalStage, queue_output: str) -> list[dict[str, Any]]:
    """Receive (and delete) what the queue holds, with its system attributes."""
    return take(stage, str(stage.output("test-Tiny", queue_output)), system_attributes=True)


def _async_log(stage: LocalStage, label: str, request_id: str) -> list[dict[str, Any]]:
    path = stage.logs.path(label)
    lines = path.read_text().splitlines() if path.exists() else []
    records = [json.loads(line) for line in lines if '"localstage.asyncInvoke"' in line]
    return [record for record in records if record.get("requestId") == request_id]


def test_a_throttled_async_event_is_retried_until_its_maximum_age_then_sent_on_failure(
    throttle_stage: LocalStage,
) -> None:
    """An asynchronous event the function has no concurrency for (reserved concurrency
    busy, or 0) goes back to Lambda's queue and is retried with back-off (1 s doubling
    to 5 min) for up to MaximumEventAgeInSeconds (6 h by default); a throttle uses no
    retry attempt. Then the event is discarded, or sent to the on-failure destination
    (condition EventAgeExceeded) or DLQ.
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    """
    from localstage.invoke import lambda_service

    function = throttle_stage.function("Unavailable")
    assert function.spec.reserved_concurrency == 0
    service = lambda_service(throttle_stage)

    # WHEN it is invoked asynchronously (maximum age 300 s, no retries after errors)
    request_id = service.invoke_async(function, {"seconds": 0})

    # THEN it never runs: throttled again and again, then the age runs out
    [message] = _wait("the on-failure record", lambda: _take(throttle_stage, "AsyncFailuresUrl"))
    record = json.loads(message["Body"])
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"seconds": 0}
    assert function.invocations == 0
    log = _async_log(throttle_stage, "Unavailable", request_id)
    delays = [record["retryInSeconds"] for record in log if record.get("status") == "throttled"]
    # 1 + 2 + 4 + ... stage seconds: more than the one retry MaximumRetryAttempts 0 allows
    assert delays[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0], delays


def test_a_throttled_async_event_runs_once_the_reserved_concurrency_frees_up(
    throttle_stage: LocalStage, tmp_path: Path
) -> None:
    """A throttled asynchronous event is returned to the queue and retried; it runs once
    an environment of the reserved concurrency is free, never beyond it.
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    """
    from localstage.invoke import lambda_service

    function = throttle_stage.function("OneAtATime")
    assert function.spec.reserved_concurrency == 1
    function.invoke({"seconds": 0})  # warm: no cold-start wait below
    service = lambda_service(throttle_stage)
    release = tmp_path / "release"
    busy = threading.Thread(
        target=function.invoke,
        args=({"seconds": HOLD_SECONDS, "release": str(release)},),
        daemon=True,
    )

    # GIVEN its one environment busy (until released, however late the threads run)
    invocations = function.invocations
    busy.start()
    try:
        _wait("the busy invocation to start", lambda: function.invocations > invocations)
        # WHEN an event arrives
        request_id = service.invoke_async(function, {"seconds": 0})
        event = service.events[request_id]
        # THEN it is throttled (not waiting inside the function's pool) and not run
        _wait(
            "the event to be throttled",
            lambda: any(
                record.get("status") == "throttled"
                for record in _async_log(throttle_stage, "OneAtATime", request_id)
            ),
        )
        assert event.attempts == 0 and event.outcome is None
    finally:
        release.touch()
        busy.join()
    # AND it runs once, after the environment is free
    _wait("the event to succeed", lambda: event.outcome == "Success")
    assert event.attempts == 1


def test_a_throttled_sqs_batch_returns_to_the_queue_and_can_reach_the_dlq(
    throttle_stage: LocalStage,
) -> None:
    """When the function is throttled, the messages of the batch become visible again
    after the queue's visibility timeout; each receive counted, so after
    maxReceiveCount the redrive policy moves them to the DLQ, the function never having
    run (why AWS recommends the mapping's maximum concurrency over reserved concurrency).
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    """
    function = throttle_stage.function("Drained")
    assert function.spec.reserved_concurrency == 0
    sqs = throttle_stage.cloud.client("sqs")
    work = str(throttle_stage.output("test-Tiny", "WorkUrl"))

    # WHEN a message arrives (visibility timeout 30 s, maxReceiveCount 2)
    sqs.send_message(QueueUrl=work, MessageBody="throttled")

    # THEN it reaches the DLQ after its receives, never delivered to the function
    [dead] = _wait("the dead letter", lambda: _take(throttle_stage, "WorkDeadLettersUrl"))
    assert dead["Body"] == "throttled"
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= 2, dead["Attributes"]
    assert function.invocations == 0
    attributes = sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_throttled_stream_batch_is_retried_until_its_records_are_too_old(
    throttle_stage: LocalStage,
) -> None:
    """A DynamoDB stream mapping that cannot invoke the function (throttled) retries
    the batch, the shard waiting, until the records expire or pass
    MaximumRecordAgeInSeconds; MaximumRetryAttempts counts function errors, not
    throttles. Given-up records go to the on-failure destination.
    https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
    https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html
    """
    function = throttle_stage.function("Stalled")
    assert function.spec.reserved_concurrency == 0
    table = str(throttle_stage.output("test-Tiny", "LedgerName"))

    # WHEN a record is written (MaximumRetryAttempts 0, MaximumRecordAgeInSeconds 60)
    throttle_stage.cloud.client("dynamodb").put_item(
        TableName=table, Item={"pk": {"S": "throttled"}}
    )

    # THEN it is retried past the zero retries, until too old: never run
    [message] = _wait("the on-failure record", lambda: _take(throttle_stage, "StreamFailuresUrl"))
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RecordAgeExceeded", record
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    assert function.invocations == 0


# ---------------------------------------------------------------------- payloads


def test_an_sqs_message_over_1_mib_is_refused(tiny_stage: LocalStage) -> None:
    """SQS messages are at most 1 MiB (1,048,576 bytes) since January 2026; a larger
    SendMessage is refused.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
    """
    sqs = tiny_stage.cloud.client("sqs")
    queue = sqs.create_queue(QueueName="limits-size")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="x" * MB)
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=queue, MessageBody="x" * (MB + 1))
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_put_events_over_1_mb_is_refused(tiny_stage: LocalStage) -> None:
    """PutEvents entries add up to at most 1 MB (256 KB before January 2026), counted
    as Time (14 bytes) + Source + DetailType + Detail + Resources in UTF-8.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html
    """
    events = tiny_stage.cloud.client("events")
    head = len("limits") + len("Big")
    detail = json.dumps({"x": "y" * (MB - head - 9)})
    assert head + len(detail) == MB
    accepted = events.put_events(
        Entries=[{"Source": "limits", "DetailType": "Big", "Detail": detail}]
    )
    assert accepted["FailedEntryCount"] == 0
    with pytest.raises(ClientError) as refused:
        events.put_events(
            Entries=[{"Source": "limits", "DetailType": "Big", "Detail": detail[:-1] + " }"}]
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"


# ---------------------------------------------------------------------- event sources

BATCH = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    "payload",
    [
        "ok",  # not an object
        ["m2"],
        {"batchItemFailures": "m2"},  # not a list
        {"batchItemFailures": {}},  # not a list, though empty
        {"batchItemFailures": ""},
        {"batchItemFailures": 0},
        {"batchItemFailures": False},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"id": "m2"}]},  # a wrong key name
        {"batchItemFailures": [{"itemIdentifier": "other"}]},
    ],
)
def test_an_invalid_batch_item_failures_response_fails_the_whole_batch(payload: Any) -> None:
    """With ReportBatchItemFailures, Lambda treats the whole batch as failed when the
    response is invalid JSON for a batch response, or an itemIdentifier is empty, null,
    under a wrong key name or not in the batch; null or empty responses are a success.
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
    https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
    """
    kept = failed_message_ids(BATCH, payload, errored=False, report_item_failures=True)
    assert kept == set(BATCH)
    numbers = ["101", "102", "103"]
    stream_payload = json.loads(json.dumps(payload).replace('"m2"', '"102"'))
    assert (
        first_failed_index(numbers, stream_payload, errored=False, report_item_failures=True) == 0
    )
    # A null or empty response is a success.
    successes: list[Any] = [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}]
    for success in successes:
        assert failed_message_ids(BATCH, success, errored=False, report_item_failures=True) == set()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a string", True),
        (0, True),
        (None, True),
        (["a", "b"], True),  # an array of leaf values
        ({"nested": 1}, False),  # an object is not a leaf
        ([{"nested": 1}], False),
        ([], False),
    ],
)
def test_exists_matches_leaf_values_only(value: Any, expected: bool) -> None:
    """EventBridge's exists filter matches only leaf nodes, not intermediate ones
    (objects).
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-exists-matching
    """
    pattern = parse(json.dumps({"detail": {"field": [{"exists": True}]}}))
    assert matches(pattern, {"detail": {"field": value}}) is expected


def test_a_flexible_window_fires_anywhere_inside_the_window() -> None:
    """With FlexibleTimeWindow FLEXIBLE, the Scheduler invokes the target at any time
    within MaximumWindowInMinutes after the scheduled time ("it invokes the target within
    15 minutes after the scheduled time").
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-flexible-time-windows.html
    """
    from localstage.sources.scheduler import firing_offset

    window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    offsets = [firing_offset(window, f"arn:schedule/{n}") for n in range(200)]
    assert all(0 <= offset <= 900 for offset in offsets)
    # Spread over the window, not bunched at the scheduled time
    assert min(offsets) < 90 and max(offsets) > 810
    assert sum(1 for offset in offsets if offset < 1) < 5
    # Seeded: the same schedule version always fires at the same point
    assert firing_offset(window, "arn:schedule/1") == offsets[1]


def test_without_a_flexible_window_a_schedule_fires_within_the_minute_after_its_time() -> None:
    """With FlexibleTimeWindow OFF the Scheduler's precision is 60 seconds: "All schedule
    types on EventBridge Scheduler invoke their targets with 60 second precision. This
    means that if you set your schedule to run at 1:00, it will invoke the target API
    between 1:00:00 and 1:00:59, assuming that a flexible time window is not set."
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
    localstage fires anywhere in those 60 s (seeded per schedule version), never before
    the time asked for, so code that relies on running at that exact second fails here.
    """
    from localstage.sources.scheduler import firing_offset

    offsets = [firing_offset({"Mode": "OFF"}, f"arn:schedule/{n}") for n in range(200)]
    assert all(0 <= offset < 60 for offset in offsets)
    assert min(offsets) < 6 and max(offsets) > 54
    assert sum(1 for offset in offsets if offset < 1) < 10
    assert firing_offset(None, "arn:schedule/1") == offsets[1]


def _sqs_mapping(
    properties: dict[str, Any], *, visibility_timeout: int = 30, function_timeout: float = 3
) -> SqsEventSourceMapping:
    queue = Resource(
        "S",
        "Q",
        "AWS::SQS::Queue",
        {"VisibilityTimeout": visibility_timeout},
        attributes={
            "Arn": "arn:aws:sqs:us-east-1:123456789012:q",
            "QueueUrl": "http://localhost/q",
            "QueueName": "q",
        },
    )
    mapping = Resource("S", "M", "AWS::Lambda::EventSourceMapping", properties)
    function = MagicMock()
    function.spec.timeout_seconds = function_timeout
    return SqsEventSourceMapping(MagicMock(), mapping, queue, function)


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        ({"BatchSize": 100}, "MaximumBatchingWindowInSeconds of at least 1"),
        ({"BatchSize": 11, "MaximumBatchingWindowInSeconds": 0}, "at least 1"),
        ({"ScalingConfig": {"MaximumConcurrency": 1}}, "outside 2-1000"),
        ({"ScalingConfig": {"MaximumConcurrency": 1001}}, "outside 2-1000"),
    ],
)
def test_an_sqs_mapping_aws_refuses_stops_the_boot(settings: dict[str, Any], refusal: str) -> None:
    """CreateEventSourceMapping: "When you set BatchSize to a value greater than 10, you
    must set MaximumBatchingWindowInSeconds to at least 1"; ScalingConfig's
    MaximumConcurrency is 2-1000. A deployment with either fails, and so does the boot.
    https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
    https://docs.aws.amazon.com/lambda/latest/api/API_ScalingConfig.html
    """
    properties = {"EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q", **settings}
    with pytest.raises(InvalidMappingError, match=refusal):
        _sqs_mapping(properties)
    # AND the same mapping within the limits is taken
    _sqs_mapping(
        {
            **properties,
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 1,
            "ScalingConfig": {"MaximumConcurrency": 2},
        }
    )


def test_an_sqs_mapping_whose_function_outlives_the_visibility_timeout_stops_the_boot() -> None:
    """ "Your function's timeout must be less than or equal to the queue's visibility
    timeout. Lambda validates this requirement when you create or update an event
    source mapping and will return an error if the function timeout exceeds the queue's
    visibility timeout."
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
    """
    properties = {"EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q"}

    # WHEN the function may run 31 s and the queue hides a message for 30 s
    # THEN the mapping is refused, as CreateEventSourceMapping refuses it
    with pytest.raises(InvalidMappingError, match="visibility timeout: 30 seconds is less"):
        _sqs_mapping(properties, visibility_timeout=30, function_timeout=31)

    # AND a function timeout equal to the visibility timeout is taken ("less than or equal")
    _sqs_mapping(properties, visibility_timeout=30, function_timeout=30)


@pytest.mark.parametrize(
    "pattern",
    [{"eventName": ["INSERT"]}, {"dynamodb": {"Keys": {}}, "awsRegion": ["us-east-1"]}],
)
def test_a_stream_filter_on_another_key_than_dynamodb_stops_the_boot(
    pattern: dict[str, Any],
) -> None:
    """ "DynamoDB event source mappings only support filtering on the dynamodb key."
    https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html
    """
    stage = MagicMock()
    stage.deployment.resources.return_value = []
    properties = {
        "EventSourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        "StartingPosition": "TRIM_HORIZON",
        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern)}]},
    }
    mapping = Resource("S", "M", "AWS::Lambda::EventSourceMapping", properties)
    with pytest.raises(InvalidMappingError, match="filter on the dynamodb key only"):
        DynamoDBStreamMapping(stage, mapping, MagicMock())
