"""The processor end to end on moto: S3 events in, hops chained through a fake invoker."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.events import s3_event, s3_object_created_record
from tests.unit.recursive_processor.conftest import (
    FUNCTION_NAME,
    INPUT_BUCKET,
    INPUT_PREFIX,
    RECORDS_PER_HOP,
    Expected,
    Processor,
    ndjson,
    record_line,
    run_id_of,
)

SUMMARY_FIELDS = {
    "run_id",
    "status",
    "source",
    "records",
    "errors",
    "amount_total",
    "checksum",
    "hops",
    "bytes_read",
    "started_at",
    "finished_at",
    "duration_ms",
    "error_objects",
}


def lines(count: int, start: int = 0) -> list[str]:
    return [record_line(index) for index in range(start, start + count)]


def assert_done_with(
    processor: Processor, run_id: str, expected: Expected, *, errors: int = 0
) -> dict[str, Any]:
    run = processor.infra.run(run_id)
    assert run["status"] == "DONE"
    summary: dict[str, Any] = processor.infra.output_json(run["summary_key"])
    assert set(summary) == SUMMARY_FIELDS
    assert summary["records"] == run["records"] == expected.records
    assert summary["amount_total"] == run["amount_total"] == expected.amount_total
    assert summary["checksum"] == expected.checksum
    assert summary["errors"] == run["errors"] == errors
    assert summary["hops"] == run["hops"]
    assert summary["bytes_read"] == run["bytes_read"]
    assert run["offset"] == run["size"] == summary["source"]["size"]
    return summary


# --------------------------------------------------------------------------- happy paths


def test_every_record_of_a_multi_record_event_starts_its_own_run(processor: Processor) -> None:
    # GIVEN three objects created at once, notified in one event
    files = {f"{INPUT_PREFIX}file-{n}.ndjson": lines(5 + 10 * n, start=100 * n) for n in range(3)}
    records = [processor.infra.upload(key, ndjson(body)) for key, body in files.items()]

    # WHEN the event arrives and every self-invocation is delivered
    started = processor.notify(*records)
    processor.drain()

    # THEN each object has its own run, DONE with exactly its own records
    assert len(started["run_ids"]) == len(set(started["run_ids"])) == 3
    for run_id, body in zip(started["run_ids"], files.values(), strict=True):
        assert_done_with(processor, run_id, Expected.of(body))
    assert len(processor.infra.output_keys()) == 3


def test_a_large_file_takes_several_hops_and_processes_every_record_once(
    processor: Processor,
) -> None:
    # GIVEN a file that needs at least five hops
    body = lines(5 * RECORDS_PER_HOP + 7)
    data = ndjson(body)
    record = processor.infra.upload(f"{INPUT_PREFIX}big.ndjson", data)

    # WHEN it is processed
    run_id = run_id_of(processor.notify(record))
    hops = processor.drain()

    # THEN the chain took six hops, each handed over before its time ran out
    summary = assert_done_with(processor, run_id, Expected.of(body))
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
    record = processor.infra.upload(
        f"{INPUT_PREFIX}no-newline.ndjson", ndjson(body, trailing_newline=False)
    )
    run_id = run_id_of(processor.notify(record))
    processor.drain()
    assert_done_with(processor, run_id, Expected.of(body))


def test_empty_file_is_done_in_one_hop_without_reading(processor: Processor) -> None:
    # GIVEN an empty object WHEN it is processed THEN the run is DONE with nothing counted
    record = processor.infra.upload(f"{INPUT_PREFIX}empty.ndjson", b"")
    run_id = run_id_of(processor.notify(record))
    processor.drain()
    summary = assert_done_with(processor, run_id, Expected.of([]))
    assert summary["hops"] == 1 and summary["bytes_read"] == 0
    assert summary["error_objects"] == []


def test_windows_line_endings_and_blank_lines_are_not_errors(processor: Processor) -> None:
    # GIVEN CRLF line ends and blank lines WHEN processed THEN neither is a bad record
    body = lines(4)
    data = ("\r\n".join(body[:2]) + "\r\n\r\n  \n" + "\n".join(body[2:]) + "\n").encode()
    record = processor.infra.upload(f"{INPUT_PREFIX}crlf.ndjson", data)
    run_id = run_id_of(processor.notify(record))
    processor.drain()
    assert_done_with(processor, run_id, Expected.of(body))


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
    run_id = run_id_of(processor.notify(record))
    processor.drain()

    # THEN the good records are all processed and the bad ones counted, never fatal
    summary = assert_done_with(processor, run_id, Expected.of(good), errors=len(bad))
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
    record = processor.infra.upload(f"{INPUT_PREFIX}bad.ndjson", ndjson(bad))
    run_id = run_id_of(processor.notify(record))
    processor.drain()
    summary = assert_done_with(processor, run_id, Expected.of([]), errors=len(bad))
    errors = [e for key in summary["error_objects"] for e in processor.infra.output_lines(key)]
    assert len(errors) == len(bad)


# --------------------------------------------------------------------------- duplicates


def test_a_duplicate_s3_notification_does_not_start_a_second_run(processor: Processor) -> None:
    # GIVEN one upload WHEN S3 notifies it three times (twice during the run, once after)
    # THEN there is one run, one chain of hops, and each record is counted once
    body = lines(2 * RECORDS_PER_HOP + 5)
    record = processor.infra.upload(f"{INPUT_PREFIX}dup.ndjson", ndjson(body))
    first = processor.notify(record)
    second = processor.notify(record)
    processor.drain()
    processor.notify(record)
    assert first["run_ids"] == second["run_ids"]
    assert len(processor.infra.runs()) == 1
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3]
    assert_done_with(processor, run_id_of(first), Expected.of(body))


def test_a_hop_delivered_twice_is_processed_once(processor: Processor) -> None:
    # GIVEN a run in progress
    body = lines(4 * RECORDS_PER_HOP + 5)
    record = processor.infra.upload(f"{INPUT_PREFIX}twice.ndjson", ndjson(body))
    run_id = run_id_of(processor.notify(record))

    # WHEN every hop is delivered twice (Lambda's async queue delivers at least once)
    outcomes = []
    while processor.pending():
        payload = processor.pending()[0]
        outcomes.append(processor.deliver_next()["outcome"])
        outcomes.append(processor.invoke(payload)["outcome"])

    # THEN each duplicate did nothing: no double counting, no second chain
    assert outcomes == ["continued", "duplicate"] * 4 + ["done", "duplicate"]
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3, 4, 5]
    assert_done_with(processor, run_id, Expected.of(body))


def test_a_duplicate_arriving_while_the_hop_runs_does_nothing(processor: Processor) -> None:
    # GIVEN hop 1 of a run is being processed
    body = lines(2 * RECORDS_PER_HOP)
    record = processor.infra.upload(f"{INPUT_PREFIX}concurrent.ndjson", ndjson(body))
    run_id = run_id_of(processor.notify(record))
    payload = processor.pending()[0]
    during: list[dict[str, Any]] = []
    # WHEN the same hop is delivered again while the first holds it
    processor.sleep.during = lambda: during.append(processor.invoke(payload))
    processor.drain()

    # THEN the second delivery saw the claim and stopped; the run counts each record once
    assert [result["outcome"] for result in during] == ["in_progress"]
    assert_done_with(processor, run_id, Expected.of(body))


def test_a_hop_whose_successor_was_never_sent_resends_it_on_retry(processor: Processor) -> None:
    # GIVEN hop 1 commits, but invoking hop 2 fails (the invocation errors)
    body = lines(3 * RECORDS_PER_HOP + 5)
    record = processor.infra.upload(f"{INPUT_PREFIX}retry.ndjson", ndjson(body))
    run_id = run_id_of(processor.notify(record))
    hop_1 = processor.pending()[0]
    processor.invoker.fail_next = RuntimeError("Rate exceeded")
    with pytest.raises(RuntimeError, match="Rate exceeded"):
        processor.deliver_next()
    assert processor.infra.run(run_id)["hop"] == 2

    # WHEN Lambda retries hop 1
    retry = processor.invoke(hop_1)

    # THEN hop 1 is not processed again, hop 2 is sent, and the run completes correctly
    assert retry["outcome"] == "redispatched"
    processor.drain()
    assert_done_with(processor, run_id, Expected.of(body))
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3, 4]


def test_a_hop_that_crashed_gives_its_claim_back_for_the_retry(processor: Processor) -> None:
    # GIVEN hop 1 crashes half-way (e.g. S3 fails)
    body = lines(2 * RECORDS_PER_HOP)
    record = processor.infra.upload(f"{INPUT_PREFIX}crash.ndjson", ndjson(body))
    run_id = run_id_of(processor.notify(record))
    hop_1 = processor.pending()[0]

    def crash() -> None:
        raise ConnectionError("connection reset")

    processor.sleep.during = crash
    with pytest.raises(ConnectionError):
        processor.deliver_next()
    run = processor.infra.run(run_id)
    assert run["hop"] == 1 and run["records"] == 0 and "lease_owner" not in run

    # WHEN Lambda retries it THEN the retry takes the hop and the run is correct
    assert processor.invoke(hop_1)["outcome"] == "continued"
    processor.drain()
    assert_done_with(processor, run_id, Expected.of(body))


def test_a_claim_left_by_a_timed_out_hop_expires_for_the_retry(processor: Processor) -> None:
    # GIVEN a hop claimed by an invocation that was killed (claim left behind)
    body = lines(RECORDS_PER_HOP)
    record = processor.infra.upload(f"{INPUT_PREFIX}timeout.ndjson", ndjson(body))
    run_id = run_id_of(processor.notify(record))
    hop_1 = processor.pending()[0]
    store = processor.module.store
    now_ms = processor.batch.models.epoch_ms(processor.clock())
    assert store.claim(
        run_id, hop=1, offset=0, owner="killed", now_ms=now_ms, expires_ms=now_ms + 3_000
    )
    # WHEN the same hop arrives before the claim expired THEN it does nothing
    assert processor.invoke(hop_1)["outcome"] == "in_progress"
    # WHEN Lambda's retry arrives after the dead invocation's deadline THEN it runs
    processor.clock.advance(60)
    assert processor.invoke(hop_1)["outcome"] in {"continued", "done"}
    processor.drain()
    assert_done_with(processor, run_id, Expected.of(body))


# --------------------------------------------------------------------------- failures


def test_an_object_overwritten_mid_run_fails_the_run_without_mixing(processor: Processor) -> None:
    # GIVEN a run whose first hop has committed
    key = f"{INPUT_PREFIX}changing.ndjson"
    body = lines(4 * RECORDS_PER_HOP)
    record = processor.infra.upload(key, ndjson(body))
    run_id = run_id_of(processor.notify(record))
    processor.deliver_next()
    committed = processor.infra.run(run_id)

    # WHEN the object is overwritten with other records during hop 2
    processor.sleep.during = lambda: processor.infra.upload(key, ndjson(lines(200, start=5000)))
    result = processor.deliver_next()

    # THEN the run stops FAILED at once with the reason, keeping only hop 1's records
    assert result["outcome"] == "failed"
    assert processor.pending() == []
    run = processor.infra.run(run_id)
    assert run["status"] == "FAILED"
    assert run["reason"]["code"] == "object_changed"
    assert run["records"] == committed["records"] == RECORDS_PER_HOP
    assert run["offset"] == committed["offset"]
    assert run["checksum_sum"] == committed["checksum_sum"]
    # AND no summary was written
    assert processor.infra.output_keys() == []


def test_an_object_replaced_before_the_first_hop_fails_that_hop(processor: Processor) -> None:
    # GIVEN an object overwritten between its notification and hop 1
    # WHEN hop 1 runs THEN the run fails without counting a record of either version
    key = f"{INPUT_PREFIX}replaced.ndjson"
    record = processor.infra.upload(key, ndjson(lines(10)))
    run_id = run_id_of(processor.notify(record))
    processor.infra.upload(key, ndjson(lines(10, start=50)))
    assert processor.drain()[0]["outcome"] == "failed"
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"], run["records"]) == ("FAILED", "object_changed", 0)


def test_an_object_deleted_mid_run_fails_the_run(processor: Processor) -> None:
    # GIVEN an object deleted after hop 1 WHEN the chain goes on THEN the run fails
    key = f"{INPUT_PREFIX}deleted.ndjson"
    record = processor.infra.upload(key, ndjson(lines(3 * RECORDS_PER_HOP)))
    run_id = run_id_of(processor.notify(record))
    processor.deliver_next()
    processor.infra.s3.delete_object(Bucket=INPUT_BUCKET, Key=key)
    processor.drain()
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"]) == ("FAILED", "object_missing")


class S3WithoutListBucket:
    """The processor's S3 client as S3 answers a caller without ``s3:ListBucket``: a read
    of a missing key is 403 AccessDenied, not 404 NoSuchKey (moto always says 404)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_object(self, **kwargs: Any) -> Any:
        try:
            return self._client.get_object(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchKey":
                raise
            denied = {
                "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }
            raise ClientError(denied, "GetObject") from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_an_object_deleted_mid_run_fails_the_run_when_s3_answers_403(
    processor: Processor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 answers a GetObject of a missing key with 403 AccessDenied, not 404, to a
    caller without s3:ListBucket on the bucket
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions).
    The run must still end FAILED with a reason, not error and stay RUNNING."""
    # GIVEN a run past hop 1, and S3 answering as to a caller that may not list
    monkeypatch.setattr(processor.module, "s3", S3WithoutListBucket(processor.module.s3))
    key = f"{INPUT_PREFIX}deleted-denied.ndjson"
    record = processor.infra.upload(key, ndjson(lines(3 * RECORDS_PER_HOP)))
    run_id = run_id_of(processor.notify(record))
    processor.deliver_next()
    committed = processor.infra.run(run_id)
    hop_2 = processor.pending()[0]

    # WHEN the object is deleted and hop 2 runs
    processor.infra.s3.delete_object(Bucket=INPUT_BUCKET, Key=key)
    result = processor.deliver_next()

    # THEN the hop ends the run FAILED (no error for Lambda to retry), keeping hop 1's counts
    assert result["outcome"] == "failed"
    assert processor.pending() == []
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"]) == ("FAILED", "object_unreadable")
    assert "AccessDenied" in run["reason"]["message"] and key in run["reason"]["message"]
    assert run["records"] == committed["records"] == RECORDS_PER_HOP
    assert processor.infra.output_keys() == []
    # AND a duplicate delivery of that hop (at least once) changes nothing
    assert processor.invoke(hop_2)["outcome"] == "duplicate"
    assert processor.infra.run(run_id) == run


def test_reaching_the_hop_limit_fails_the_run_with_the_reason(processor: Processor) -> None:
    # GIVEN a hop limit of 3 and a file that needs 5 hops
    processor.configure(max_hops=3)
    body = lines(5 * RECORDS_PER_HOP - 2)
    record = processor.infra.upload(f"{INPUT_PREFIX}long.ndjson", ndjson(body))
    run_id = run_id_of(processor.notify(record))

    # WHEN it is processed
    outcomes = [result["outcome"] for result in processor.drain()]

    # THEN hop 3 stops the run FAILED instead of sending hop 4
    assert outcomes == ["continued", "continued", "failed"]
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3]
    run = processor.infra.run(run_id)
    assert run["status"] == "FAILED" and run["hops"] == 3
    assert run["reason"]["code"] == "hop_limit"
    assert "hop limit 3" in run["reason"]["message"]
    assert run["records"] == 3 * RECORDS_PER_HOP
    assert "summary_key" not in run


def test_a_hop_that_cannot_advance_the_offset_fails_the_run(processor: Processor) -> None:
    # GIVEN a safety margin as long as the whole invocation
    record = processor.infra.upload(f"{INPUT_PREFIX}stuck.ndjson", ndjson(lines(10)))
    run_id = run_id_of(processor.notify(record))
    processor.configure(safety_margin_ms=5_000)

    # WHEN the first hop runs THEN it fails the run instead of handing over the same offset
    assert [result["outcome"] for result in processor.drain()] == ["failed"]
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"], run["offset"]) == ("FAILED", "no_progress", 0)
    assert [p["hop"] for p in processor.invoker.payloads] == [1]


def test_a_hop_for_a_finished_run_does_nothing(processor: Processor) -> None:
    # GIVEN a finished run WHEN a late or forged hop request arrives THEN nothing changes
    body = lines(5)
    record = processor.infra.upload(f"{INPUT_PREFIX}late.ndjson", ndjson(body))
    run_id = run_id_of(processor.notify(record))
    payload = processor.pending()[0]
    processor.drain()
    late = {**payload, "hop": 1, "offset": 0}
    assert processor.invoke(late)["outcome"] == "duplicate"
    forged = {**payload, "etag": "0" * 32}
    assert processor.invoke(forged)["outcome"] == "stale"
    assert_done_with(processor, run_id, Expected.of(body))


# --------------------------------------------------------------------------- bad events


def test_an_invalid_hop_request_raises_so_it_reaches_the_failure_queue(
    processor: Processor,
) -> None:
    # GIVEN events that are neither a valid hop request nor an S3 notification
    # WHEN they arrive THEN the invocation raises (retries, then the failure queue)
    bad = {"kind": "recursive_processor.hop", "run_id": "r", "offset": -1}
    with pytest.raises(processor.batch.models.InvalidEventError):
        processor.invoke(bad)
    with pytest.raises(processor.batch.models.InvalidEventError):
        processor.invoke({"hello": "world"})
    assert processor.infra.runs() == []


def test_valid_records_start_even_when_another_record_of_the_event_is_invalid(
    processor: Processor,
) -> None:
    # GIVEN an event with a valid and an invalid record WHEN it arrives
    # THEN the valid one starts its run and the invocation still raises for the other
    body = lines(3)
    good = processor.infra.upload(f"{INPUT_PREFIX}good.ndjson", ndjson(body))
    broken = s3_object_created_record(INPUT_BUCKET, "x", size=1, etag="e")
    del broken["s3"]["bucket"]
    with pytest.raises(processor.batch.models.InvalidEventError, match="record 1"):
        processor.invoke(s3_event(good, broken))
    processor.drain()
    (run,) = processor.infra.runs()
    assert_done_with(processor, run["run_id"], Expected.of(body))


def test_keys_with_spaces_arrive_url_encoded_and_are_read(processor: Processor) -> None:
    # GIVEN a key with a space and a plus, URL-encoded in the event as S3 sends it
    # WHEN processed THEN the object is found under its real key
    body = lines(3)
    record = processor.infra.upload(f"{INPUT_PREFIX}my file+1.ndjson", ndjson(body))
    assert record["s3"]["object"]["key"] == "incoming/my+file%2B1.ndjson"
    run_id = run_id_of(processor.notify(record))
    processor.drain()
    assert processor.infra.run(run_id)["key"] == f"{INPUT_PREFIX}my file+1.ndjson"
    assert_done_with(processor, run_id, Expected.of(body))


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
