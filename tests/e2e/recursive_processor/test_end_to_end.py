"""Recursive S3 batch processor end to end: the upload's S3 notification, the
processor's asynchronous self-invocations, its checkpoints and its summary as wired."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from localstage.target import Target

from patterns.recursive_processor.scenarios import (
    STACK,
    check_summary,
    hop_capacity,
    ndjson,
    run_api,
    runs_of,
    summary_of,
    upload,
    wait_for_run,
)

#: The proof asks for a file that needs at least this many hops.
MIN_HOPS = 5
#: Largest file (records) the multi-hop tests write.
MAX_TEST_RECORDS = 60_000
#: Hops' worth of records in a file changed mid-run: the change must land before the
#: last hop starts (one read per hop) and a hop lasts about a second, so with 4 a test
#: 3-4 s late after seeing hop 2 found the run DONE. The run stops at the first hop
#: after the change: a longer file costs time only when the test is late.
MID_RUN_HOPS = 8


def _records_for_hops(target: Target, hops: float) -> int:
    capacity = hop_capacity(target)
    if capacity is None or capacity * hops > MAX_TEST_RECORDS:
        pytest.fail(
            f"the {STACK} processor of this stage cannot make a test-sized file need "
            f"{hops:g} hops: give stage local a short timeout and RECORD_WORK_MS > 0 "
            "(e.g. timeout 2 s, safety margin 1 s, record work 1 ms: 1,000 records a hop); "
            "deploy a stage for these tests with `make deploy STAGE=... TUNING=local`, or "
            "leave them out with -m 'not short_hops'"
        )
    return int(capacity * hops)


def test_an_upload_is_processed_once_into_a_correct_summary(target: Target) -> None:
    # GIVEN a file with bad lines and no trailing newline
    file = ndjson(3_000, bad_every=500, trailing_newline=False)

    # WHEN it is uploaded under the input prefix
    key = upload(target, f"e2e-{uuid.uuid4().hex[:8]}", file)

    # THEN one run ends DONE; its summary counts every record once and the bad lines
    run = wait_for_run(target, key, status="DONE")
    check_summary(summary_of(target, run), file)
    assert len(runs_of(target, key)) == 1
    view = run_api(target, run["run_id"])
    assert view["status"] == "DONE"
    assert view["records"] == file.records
    assert view["errors"] == file.errors == 6


def test_an_empty_file_ends_done_with_nothing_counted(target: Target) -> None:
    file = ndjson(0)
    key = upload(target, f"e2e-empty-{uuid.uuid4().hex[:8]}", file)

    summary = summary_of(target, wait_for_run(target, key, status="DONE"))

    assert (summary["records"], summary["errors"]) == (0, 0)


@pytest.mark.load
@pytest.mark.short_hops
def test_a_file_needing_five_hops_is_processed_once_across_hops(target: Target) -> None:
    # GIVEN a file that needs at least five hops of this stage's processor
    file = ndjson(_records_for_hops(target, MIN_HOPS + 0.5))

    # WHEN it is uploaded
    key = upload(target, f"e2e-hops-{uuid.uuid4().hex[:8]}", file)

    # THEN the chain of self-invocations ran at least five hops and every record once
    run = wait_for_run(target, key, status="DONE", timeout=240)
    summary = summary_of(target, run)
    check_summary(summary, file)
    assert summary["hops"] >= MIN_HOPS


@pytest.mark.short_hops
def test_an_object_overwritten_mid_run_fails_that_run_and_mixes_nothing(
    target: Target,
) -> None:
    # GIVEN a run of a file needing several hops, past its first hop
    first = ndjson(_records_for_hops(target, MID_RUN_HOPS))
    key = upload(target, f"e2e-overwrite-{uuid.uuid4().hex[:8]}", first)
    running = wait_for_run(target, key, status="RUNNING", matching=lambda run: run["hop"] >= 2)

    # WHEN the object is overwritten with other content
    second = ndjson(100)
    upload(target, key.rsplit("/", 1)[-1].removesuffix(".ndjson"), second)

    # THEN the first run stops FAILED (object changed); the new version gets its own run
    failed = _failed_run(target, key, running["run_id"])
    assert failed["reason"]["code"] == "object_changed"
    done = wait_for_run(target, key, status="DONE", timeout=120)
    check_summary(summary_of(target, done), second)


@pytest.mark.short_hops
def test_an_object_deleted_mid_run_fails_that_run_as_missing(target: Target) -> None:
    """S3 answers a read of a deleted key with 404 only to a caller with s3:ListBucket on
    the bucket, and with 403 AccessDenied to any other
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions);
    localstage answers the same way, so this fails if the processor cannot list its
    input bucket (the run would end ``object_unreadable``) or does not handle the 403
    (the run would stay RUNNING through Lambda's retries)."""
    # GIVEN a run of a file needing several hops, past its first hop
    file = ndjson(_records_for_hops(target, MID_RUN_HOPS))
    key = upload(target, f"e2e-delete-{uuid.uuid4().hex[:8]}", file)
    running = wait_for_run(target, key, status="RUNNING", matching=lambda run: run["hop"] >= 2)

    # WHEN the object is deleted
    target.delete_object(target.output(STACK, "InputBucketName"), key)

    # THEN the run stops FAILED because the object is missing, and writes no summary
    failed = _failed_run(target, key, running["run_id"])
    assert failed["reason"]["code"] == "object_missing"
    assert "summary_key" not in failed


def _failed_run(target: Target, key: str, run_id: str) -> dict[str, Any]:
    """The run ``run_id`` of ``key`` once it has stopped FAILED."""
    return wait_for_run(
        target, key, status="FAILED", timeout=120, matching=lambda run: run["run_id"] == run_id
    )
