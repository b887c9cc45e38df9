"""batch_processor against moto: happy paths, bad records and bad events."""

from __future__ import annotations

import pytest

from tests.support.events import s3_event, s3_object_created_record
from tests.unit.recursive_processor.conftest import (
    FUNCTION_NAME,
    INPUT_BUCKET,
    INPUT_PREFIX,
    RECORDS_PER_HOP,
    Processor,
    lines,
    ndjson,
)

# --------------------------------------------------------------------------- happy paths


def test_every_record_of_a_multi_record_event_starts_its_own_run(processor: Processor) -> None:
    # GIVEN three objects created at once, notified in one event
    files = {f"file-{n}.ndjson": lines(5 + 10 * n, start=100 * n) for n in range(3)}
    records = [processor.upload_lines(name, body) for name, body in files.items()]

    # WHEN the event arrives and every self-invocation is delivered
    started = processor.notify(*records)
    processor.drain()

    # THEN each object has its own run, DONE with exactly its own records
    assert len(started["run_ids"]) == len(set(started["run_ids"])) == 3
    for run_id, body in zip(started["run_ids"], files.values(), strict=True):
        processor.assert_done(run_id, body)
    assert len(processor.infra.output_keys()) == 3


def test_a_large_file_takes_several_hops_and_processes_every_record_once(
    processor: Processor,
) -> None:
    # GIVEN a file that needs at least five hops
    body = lines(5 * RECORDS_PER_HOP + 7)
    data = ndjson(body)
    record = processor.infra.upload(f"{INPUT_PREFIX}big.ndjson", data)

    # WHEN it is processed
    run_id = processor.start(record)
    hops = processor.drain()

    # THEN the chain took six hops, each handed over before its time ran out
    summary = processor.assert_done(run_id, body)
    assert summary["hops"] == len(hops) == 6
    assert [hop["outcome"] for hop in hops] == ["continued"] * 5 + ["done"]
    # every self-invocation targets this function, asynchronously, with the next hop
    calls = processor.invoker.calls
    assert {call["FunctionName"] for call in calls} == {
        f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"
    }
    assert {call["InvocationType"] for call in calls} == {"Event"}
    payloads = processor.invoker.payloads
    assert [p["hop"] for p in payloads] == [1, 2, 3, 4, 5, 6]
    offsets = [p["offset"] for p in payloads]
    assert offsets[0] == 0 and offsets == sorted(set(offsets))
    # each hop starts on a line boundary
    boundaries = {0} | {i + 1 for i, byte in enumerate(data) if byte == ord("\n")}
    assert set(offsets) <= boundaries
    assert {p["etag"] for p in payloads} == {record["s3"]["object"]["eTag"]}
    # ranged reads: every byte once plus, per hop, at most the range it stopped in
    assert len(data) <= summary["bytes_read"] <= len(data) + 64 * summary["hops"]


def test_file_without_trailing_newline_counts_its_last_record(processor: Processor) -> None:
    # GIVEN a file whose last line has no newline WHEN it is processed
    # THEN its last record counts like every other
    body = lines(30)
    record = processor.upload_lines("no-newline.ndjson", body, trailing_newline=False)
    run_id = processor.start(record)
    processor.drain()
    processor.assert_done(run_id, body)


def test_empty_file_is_done_in_one_hop_without_reading(processor: Processor) -> None:
    # GIVEN an empty object WHEN it is processed THEN the run is DONE with nothing counted
    record = processor.upload_lines("empty.ndjson", [])
    run_id = processor.start(record)
    processor.drain()
    summary = processor.assert_done(run_id, [])
    assert summary["hops"] == 1 and summary["bytes_read"] == 0
    assert summary["error_objects"] == []


def test_windows_line_endings_and_blank_lines_are_not_errors(processor: Processor) -> None:
    # GIVEN CRLF line ends and blank lines WHEN processed THEN neither is a bad record
    body = lines(4)
    data = ("\r\n".join(body[:2]) + "\r\n\r\n  \n" + "\n".join(body[2:]) + "\n").encode()
    record = processor.infra.upload(f"{INPUT_PREFIX}crlf.ndjson", data)
    run_id = processor.start(record)
    processor.drain()
    processor.assert_done(run_id, body)


# --------------------------------------------------------------------------- bad records


def test_bad_records_are_counted_and_written_to_errors_objects(processor: Processor) -> None:
    # GIVEN good records interleaved with every kind of bad one, across several hops
    good = lines(3 * RECORDS_PER_HOP)
    bad = [
        "not json at all",
        '["a", "list"]',
        '{"id": "x"}',
        '{"id": "", "amount": 1}',
        '{"id": "y", "amount": 1.5}',
        '{"id": "z", "amount": "7"}',
        '{"id": "big", "amount": 1, "pad": "' + "x" * 300 + '"}',
    ]
    mixed = good[:10] + bad[:3] + good[10:40] + bad[3:] + good[40:]
    data = ndjson(mixed)
    record = processor.infra.upload(f"{INPUT_PREFIX}mixed.ndjson", data)

    # WHEN it is processed
    run_id = processor.start(record)
    processor.drain()

    # THEN the good records are all processed and the bad ones counted, never fatal
    summary = processor.assert_done(run_id, good, errors=len(bad))
    # AND every bad record is in an errors object, with its offset and why
    errors = [e for key in summary["error_objects"] for e in processor.infra.output_lines(key)]
    assert [e["error"] for e in errors] == [
        "invalid_json",
        "invalid_record",
        "invalid_record",
        "invalid_record",
        "invalid_record",
        "invalid_record",
        "record_too_large",
    ]
    for error, line in zip(errors, bad, strict=True):
        assert data[error["offset"] :].startswith(line[:50].encode())
    assert "amount" in errors[2]["message"] and "id" in errors[3]["message"]
    assert len(summary["error_objects"]) >= 2  # the bad records sit in different hops
    assert set(processor.infra.output_keys()) == {
        *summary["error_objects"],
        f"runs/{run_id}/summary.json",
    }


def test_a_file_of_only_bad_records_is_done_with_zero_records(processor: Processor) -> None:
    # GIVEN only bad lines WHEN processed THEN the run is DONE, all of them listed as errors
    bad = ["{oops", "42", "null", '{"amount": 3}'] * 5
    record = processor.upload_lines("bad.ndjson", bad)
    run_id = processor.start(record)
    processor.drain()
    summary = processor.assert_done(run_id, [], errors=len(bad))
    errors = [e for key in summary["error_objects"] for e in processor.infra.output_lines(key)]
    assert len(errors) == len(bad)


# --------------------------------------------------------------------------- bad events


@pytest.mark.parametrize(
    "event",
    [
        {"kind": "recursive_processor.hop", "run_id": "r", "offset": -1},
        {"hello": "world"},
        {"Records": []},
    ],
    ids=["bad-hop", "no-records", "empty-records"],
)
def test_an_invalid_hop_request_raises_so_it_reaches_the_failure_queue(
    processor: Processor, event: dict[str, object]
) -> None:
    # GIVEN an event that is neither a valid hop request nor an S3 notification
    # WHEN it arrives THEN the invocation raises (retries, then the failure queue)
    with pytest.raises(processor.batch.models.InvalidEventError):
        processor.invoke(event)
    assert processor.infra.runs() == []


def test_valid_records_start_even_when_another_record_of_the_event_is_invalid(
    processor: Processor,
) -> None:
    # GIVEN an event with a valid and an invalid record WHEN it arrives
    # THEN the valid one starts its run and the invocation still raises for the other
    body = lines(3)
    good = processor.upload_lines("good.ndjson", body)
    broken = s3_object_created_record(INPUT_BUCKET, "x", size=1, etag="e")
    del broken["s3"]["bucket"]
    with pytest.raises(processor.batch.models.InvalidEventError, match="record 1"):
        processor.invoke(s3_event(good, broken))
    processor.drain()
    (run,) = processor.infra.runs()
    processor.assert_done(run["run_id"], body)


def test_keys_with_spaces_arrive_url_encoded_and_are_read(processor: Processor) -> None:
    # GIVEN a key with a space and a plus, URL-encoded in the event as S3 sends it
    # WHEN processed THEN the object is found under its real key
    body = lines(3)
    record = processor.upload_lines("my file+1.ndjson", body)
    assert record["s3"]["object"]["key"] == "incoming/my+file%2B1.ndjson"
    run_id = processor.start(record)
    processor.drain()
    assert processor.infra.run(run_id)["key"] == f"{INPUT_PREFIX}my file+1.ndjson"
    processor.assert_done(run_id, body)


def test_non_create_records_are_ignored(processor: Processor) -> None:
    # GIVEN a record of another event type WHEN it arrives THEN no run starts
    record = s3_object_created_record(
        INPUT_BUCKET, "incoming/x.ndjson", size=0, etag="e", event_name="ObjectRemoved:Delete"
    )
    assert processor.notify(record) == {"run_ids": []}
    assert processor.invoker.calls == []


def test_the_s3_test_event_is_acknowledged_without_a_run(processor: Processor) -> None:
    # GIVEN the test message S3 may send when the notification is configured
    event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2025-03-14T09:26:53.589Z",
        "Bucket": INPUT_BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    # WHEN it arrives THEN it is consumed (no error, so no retry) and nothing starts
    assert processor.invoke(event) == {"run_ids": []}
    assert processor.infra.runs() == [] and processor.invoker.calls == []
