"""batch_processor against moto: objects changed mid-run, hop limits and finished runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.events import s3_object_created_record
from tests.unit.recursive_processor.conftest import (
    INPUT_BUCKET,
    INPUT_PREFIX,
    RANGE_BYTES,
    RECORDS_PER_HOP,
    TIMEOUT_MS,
    Processor,
    lines,
    ndjson,
)

# --------------------------------------------------------------------------- failures


def test_an_object_overwritten_mid_run_fails_the_run_without_mixing(processor: Processor) -> None:
    # GIVEN a run whose first hop has committed
    body = lines(4 * RECORDS_PER_HOP)
    record = processor.upload_lines("changing.ndjson", body)
    run_id = processor.start(record)
    processor.deliver_next()
    committed = processor.infra.run(run_id)

    # WHEN the object is overwritten with other records during hop 2
    processor.sleep.during = lambda: processor.upload_lines(
        "changing.ndjson", lines(200, start=5000)
    )
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
    record = processor.upload_lines("replaced.ndjson", lines(10))
    run_id = processor.start(record)
    processor.upload_lines("replaced.ndjson", lines(10, start=50))
    assert processor.drain()[0]["outcome"] == "failed"
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"], run["records"]) == ("FAILED", "object_changed", 0)


def test_an_object_deleted_mid_run_fails_the_run(processor: Processor) -> None:
    # GIVEN an object deleted after hop 1 WHEN the chain goes on THEN the run fails
    record = processor.upload_lines("deleted.ndjson", lines(3 * RECORDS_PER_HOP))
    run_id = processor.start(record)
    processor.deliver_next()
    processor.delete_input("deleted.ndjson")
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
    record = processor.upload_lines("deleted-denied.ndjson", lines(3 * RECORDS_PER_HOP))
    run_id = processor.start(record)
    processor.deliver_next()
    committed = processor.infra.run(run_id)
    hop_2 = processor.pending()[0]

    # WHEN the object is deleted and hop 2 runs
    processor.delete_input("deleted-denied.ndjson")
    result = processor.deliver_next()

    # THEN the hop ends the run FAILED (no error for Lambda to retry), keeping hop 1's counts
    assert result["outcome"] == "failed"
    assert processor.pending() == []
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"]) == ("FAILED", "object_unreadable")
    assert "AccessDenied" in run["reason"]["message"]
    assert f"{INPUT_PREFIX}deleted-denied.ndjson" in run["reason"]["message"]
    assert run["records"] == committed["records"] == RECORDS_PER_HOP
    assert processor.infra.output_keys() == []
    # AND a duplicate delivery of that hop (at least once) changes nothing
    assert processor.invoke(hop_2)["outcome"] == "duplicate"
    assert processor.infra.run(run_id) == run


def test_an_archived_object_fails_the_run_instead_of_leaving_it_running(
    processor: Processor,
) -> None:
    """S3 sends ObjectCreated for an object uploaded to an archive storage class, and
    GetObject answers it 403 InvalidObjectState until it is restored
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html)."""
    # GIVEN an object uploaded as GLACIER (anyone who may PutObject may choose that)
    data = ndjson(lines(5))
    key = f"{INPUT_PREFIX}archived.ndjson"
    put = processor.infra.s3.put_object(
        Bucket=INPUT_BUCKET, Key=key, Body=data, StorageClass="GLACIER"
    )
    etag = put["ETag"].strip('"')
    run_id = processor.start(s3_object_created_record(INPUT_BUCKET, key, size=len(data), etag=etag))

    # WHEN its first hop runs THEN the run ends FAILED with the reason, nothing to retry
    assert [result["outcome"] for result in processor.drain()] == ["failed"]
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"]) == ("FAILED", "object_unreadable")
    assert "InvalidObjectState" in run["reason"]["message"]


class _SlowS3:
    """Each GetObject takes 20 ms of the (fake) clock; one past ``deadline`` means
    Lambda has already ended the invocation."""

    def __init__(self, inner: Any, processor: Processor) -> None:
        self._inner, self._processor = inner, processor
        self.deadline: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_object(self, **kwargs: Any) -> Any:
        self._processor.clock.advance(0.020)
        assert self.deadline is None or self._processor.clock() < self.deadline, "timed out"
        return self._inner.get_object(**kwargs)


def test_a_line_longer_than_a_hop_can_scan_fails_the_run_in_time(
    processor: Processor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a good line, then a line with no newline for 200 ranges (4 s of GETs, more
    # than a hop has), then more good lines
    slow = _SlowS3(processor.module.s3, processor)
    monkeypatch.setattr(processor.module, "s3", slow)
    body = [*lines(1), "x" * (200 * RANGE_BYTES), *lines(5, start=1)]
    run_id = processor.start(processor.upload_lines("giant-line.ndjson", body))

    # WHEN the chain runs, every hop under its invocation's deadline
    outcomes = []
    while processor.pending():
        slow.deadline = processor.clock() + timedelta(milliseconds=TIMEOUT_MS)
        outcomes.append(processor.deliver_next()["outcome"])

    # THEN no hop ran into its timeout (each would be retried the same way, forever):
    # hop 1 keeps the good line, hop 2 starts at the long one and fails the run
    assert outcomes == ["continued", "failed"]
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"]) == ("FAILED", "line_too_long")
    assert run["records"] == 1 and run["offset"] == len(body[0]) + 1


def test_reaching_the_hop_limit_fails_the_run_with_the_reason(processor: Processor) -> None:
    # GIVEN a hop limit of 3 and a file that needs 5 hops
    processor.configure(max_hops=3)
    body = lines(5 * RECORDS_PER_HOP - 2)
    record = processor.upload_lines("long.ndjson", body)
    run_id = processor.start(record)

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
    record = processor.upload_lines("stuck.ndjson", lines(10))
    run_id = processor.start(record)
    processor.configure(safety_margin_ms=5_000)

    # WHEN the first hop runs THEN it fails the run instead of handing over the same offset
    assert [result["outcome"] for result in processor.drain()] == ["failed"]
    run = processor.infra.run(run_id)
    assert (run["status"], run["reason"]["code"], run["offset"]) == ("FAILED", "no_progress", 0)
    assert [p["hop"] for p in processor.invoker.payloads] == [1]


def test_a_hop_for_a_finished_run_does_nothing(processor: Processor) -> None:
    # GIVEN a finished run WHEN a late or forged hop request arrives THEN nothing changes
    body = lines(5)
    record = processor.upload_lines("late.ndjson", body)
    run_id = processor.start(record)
    payload = processor.pending()[0]
    processor.drain()
    late = {**payload, "hop": 1, "offset": 0}
    assert processor.invoke(late)["outcome"] == "duplicate"
    forged = {**payload, "etag": "0" * 32}
    assert processor.invoke(forged)["outcome"] == "stale"
    processor.assert_done(run_id, body)


@pytest.mark.parametrize("shift", [-1, 1], ids=["behind-the-run", "ahead-of-the-run"])
def test_a_hop_request_at_another_offset_than_the_runs_is_stale(
    processor: Processor, shift: int
) -> None:
    # GIVEN a run RUNNING at hop 2, at the offset hop 1 committed
    body = lines(2 * RECORDS_PER_HOP + 5)
    run_id = processor.start(processor.upload_lines("offset.ndjson", body))
    assert processor.deliver_next()["outcome"] == "continued"
    hop_2 = processor.pending()[0]
    before = processor.infra.run(run_id)
    assert (before["status"], before["hop"], before["offset"]) == ("RUNNING", 2, hop_2["offset"])

    # WHEN a request for hop 2 arrives at another offset
    forged = {**hop_2, "offset": hop_2["offset"] + shift}
    outcome = processor.invoke(forged)

    # THEN it is stale: nothing claimed or committed, the run unchanged, no hop sent
    assert outcome["outcome"] == "stale"
    assert processor.infra.run(run_id) == before
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2]
    # AND the run's own hop 2 goes on, counting each record once
    processor.drain()
    processor.assert_done(run_id, body)
