"""Limits and shapes AWS enforces, which localstage enforces too (one test per rule).

Each docstring states the AWS behaviour and cites the AWS page it comes from.
"""

from __future__ import annotations

import errno
import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localstage.sources.dynamodb_streams import first_failed_index
from localstage.sources.event_patterns import matches, parse
from localstage.sources.sqs import failed_message_ids
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
    async_stage: LocalStage,
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
    busy = threading.Thread(
        target=reserved.invoke, args=({"action": "sleep", "seconds": 3},), daemon=True
    )

    # GIVEN its one environment busy
    busy.start()
    time.sleep(0.5)
    try:
        # WHEN handler code invokes it synchronously
        result = async_stage.function("Caller").invoke(
            {"target": reserved.spec.name, "payload": {"action": "sleep", "seconds": 0}}
        )
    finally:
        busy.join()

    # THEN the call is throttled at once
    assert result.payload["error"] == "TooManyRequestsException", result.payload


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
    within MaximumWindowInMinutes after the scheduled time (OFF: at the time).
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-flexible-time-windows.html
    """
    from localstage.sources.scheduler import flexible_window_offset

    window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    offsets = [flexible_window_offset(window, f"arn:schedule/{n}") for n in range(200)]
    assert all(0 <= offset <= 900 for offset in offsets)
    # Spread over the window, not bunched at the scheduled time
    assert min(offsets) < 90 and max(offsets) > 810
    assert sum(1 for offset in offsets if offset < 1) < 5
    # Seeded: the same schedule version always fires at the same point
    assert flexible_window_offset(window, "arn:schedule/1") == offsets[1]
    assert flexible_window_offset({"Mode": "OFF"}, "arn:schedule/1") == 0
