"""Fan-out/fan-in end to end: API, ventilator, SQS workers, the counter, the stream, the reducer.

Every expected aggregate is computed from the inputs (``value**2`` per subtask, as
the API documents it), never read back from the stage.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from localstage.target import HttpResponse, Target

from patterns.fan_out_fan_in.scenarios import (
    DEAD_LETTER_TIMEOUT,
    FINISH_TIMEOUT,
    MAX_SUBTASKS,
    STACK,
    api,
    check_finished,
    poll_until_finished,
    seeded_value,
)


def _submit(
    target: Target, job: dict[str, Any], headers: dict[str, str] | None = None
) -> HttpResponse:
    return target.call_api(api(target), "POST", "jobs", json_body=job, headers=headers)


@contextmanager
def _consumers_paused(target: Target, queue_url: str) -> Iterator[None]:
    # Nothing of an earlier test may still be in the queue while it is paused (in flight,
    # or, with every delivery duplicated, a late copy): its end would change the depth,
    # e.g. a message at maxReceiveCount moves to the DLQ on the next receive, even the
    # test's own. One seen after the pause (once, in duplicate mode) is let drain first.
    def paused_and_empty() -> bool | None:
        target.wait_for(
            "the subtask queue to drain", lambda: target.queue_depth(queue_url) == 0, timeout=60
        )
        target.set_queue_consumers_enabled(queue_url, False)
        empty = False
        try:
            empty = target.queue_depth(queue_url) == 0
        finally:
            if not empty:  # resumed, whatever happened, so no later test finds them paused
                target.set_queue_consumers_enabled(queue_url, True)
        return True if empty else None

    target.wait_for("the subtask queue to be empty and paused", paused_and_empty, timeout=180)
    try:
        yield
    finally:
        target.set_queue_consumers_enabled(queue_url, True)


def _check_a_job_ends_done(target: Target, n: int, job: dict[str, Any]) -> None:
    # GIVEN a job of N subtasks whose inputs the client knows
    values = job.get("items") or [seeded_value(job["seed"], i) for i in range(n)]

    # WHEN it is submitted and polled until it finishes
    accepted = _submit(target, job)
    assert accepted.status == 202, accepted.body
    done = poll_until_finished(target, accepted.headers["location"])

    # THEN every subtask was counted exactly once and the reducer aggregated them all
    assert accepted.body["status"] == "RUNNING"
    assert accepted.body["total"] == n
    assert accepted.headers["location"] == f"/api/jobs/{accepted.body['job_id']}"
    check_finished(done.body, status="DONE", values=values)


@pytest.mark.parametrize(
    ("n", "job"),
    [(1, {"items": [-7]}), (100, {"count": 100, "seed": 11})],
    ids=["N=1", "N=100"],
)
def test_a_job_ends_done_with_the_exact_aggregate_and_remaining_zero(
    target: Target, n: int, job: dict[str, Any]
) -> None:
    _check_a_job_ends_done(target, n, job)


@pytest.mark.load
def test_a_job_of_a_thousand_subtasks_ends_done_with_the_exact_aggregate(target: Target) -> None:
    _check_a_job_ends_done(target, 1000, {"count": 1000, "seed": 2026})


@pytest.mark.api_only
@pytest.mark.parametrize(
    "body",
    [
        {"count": 0},
        {"count": MAX_SUBTASKS + 1},
        {"items": []},
        {"items": list(range(MAX_SUBTASKS + 1))},
        {"items": [1, "two", 3]},
        {"items": [1.5]},
        {"items": [1, 2], "count": 2},
        {"items": [1, 2], "fail_indexes": [2]},
        "not json",
    ],
    ids=[
        "N=0",
        "N over the limit",
        "no items",
        "items over the limit",
        "a string item",
        "a float item",
        "items and count",
        "a failure index outside the job",
        "not JSON",
    ],
)
def test_bad_input_is_refused_with_400_and_nothing_is_written_or_sent(
    target: Target, body: Any
) -> None:
    # GIVEN the jobs recorded so far and the subtask queue, its consumers paused so
    # that its depth can only grow by what is sent
    jobs = target.output(STACK, "JobTableName")
    queue = target.output(STACK, "SubtaskQueueUrl")
    with _consumers_paused(target, queue):
        job_ids = {item["job_id"] for item in target.scan_items(jobs)}
        depth = target.queue_depth(queue)

        # WHEN the request is malformed
        if isinstance(body, str):
            response = target.call_api(
                api(target),
                "POST",
                "jobs",
                body=body,
                headers={"Content-Type": "application/json"},
            )
        else:
            response = _submit(target, body)

        # THEN it is a 400 in the app's error shape, and no job or subtask exists for it
        assert response.status == 400, response.body
        assert response.body["error"] == "invalid_request"
        assert isinstance(response.body["message"], str) and response.body["message"]
        assert {item["job_id"] for item in target.scan_items(jobs)} == job_ids
        assert target.queue_depth(queue) == depth


def test_a_retried_post_with_the_same_key_is_one_job_counted_once(target: Target) -> None:
    # GIVEN a job submitted with an Idempotency-Key
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    values = [3, 4, 5]
    first = _submit(target, {"items": values}, key)
    assert first.status == 202, first.body

    # WHEN the client retries it, and then reuses the key for another job
    retry = _submit(target, {"items": values}, key)
    reused = _submit(target, {"items": [1]}, key)

    # THEN the retry names the same job, the reuse is refused, and the job counts its
    # three subtasks once
    assert retry.status == 202, retry.body
    assert retry.body["job_id"] == first.body["job_id"]
    assert reused.status == 422, reused.body
    assert reused.body["error"] == "idempotency_key_reused"
    done = poll_until_finished(target, first.headers["location"])
    check_finished(done.body, status="DONE", values=values)


def test_a_poison_subtask_lands_in_the_dlq_and_the_job_reports_it(target: Target) -> None:
    # GIVEN a job whose subtask 4 fails on every delivery
    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    dead_letters = target.output(STACK, "SubtaskDeadLetterQueueUrl")
    accepted = _submit(target, {"items": values, "fail_indexes": [4]})
    assert accepted.status == 202, accepted.body
    job_id = accepted.body["job_id"]

    # WHEN it has run
    finished = poll_until_finished(target, accepted.headers["location"])

    # THEN the job ends FAILED with the failure counted, the other nine completed...
    check_finished(finished.body, status="FAILED", values=values, failed=[4])
    assert finished.body["error"]["code"] == "subtasks_failed"
    # ...and the subtask's message is in the DLQ after maxReceiveCount receives
    dead: list[dict[str, Any]] = []

    def poison_dead_lettered() -> bool:
        dead.extend(json.loads(body) for body in target.receive_messages(dead_letters))
        return any(message.get("job_id") == job_id for message in dead)

    target.wait_for(
        "the poison subtask in the DLQ", poison_dead_lettered, timeout=DEAD_LETTER_TIMEOUT
    )
    ours = [message for message in dead if message.get("job_id") == job_id]
    # (a set: SQS delivers at least once, so a copy of the poison may be there too)
    assert {message["index"] for message in ours} == {4}


def test_every_message_delivered_twice_changes_neither_counter_nor_aggregate(
    target: Target,
) -> None:
    # GIVEN a job of 100 subtasks whose every message is in the queue twice before
    # any worker runs (SQS delivers at least once)
    values = [(i * 37) % 101 - 50 for i in range(100)]
    queue = target.output(STACK, "SubtaskQueueUrl")
    with _consumers_paused(target, queue):
        depth = target.queue_depth(queue)
        accepted = _submit(target, {"items": values})
        assert accepted.status == 202, accepted.body
        copies = target.duplicate_messages(queue)
        assert copies == 100
        assert target.queue_depth(queue) == depth + 200

    # WHEN the workers consume both copies of every subtask
    done = poll_until_finished(target, accepted.headers["location"])
    target.wait_for(
        "both copies to be consumed",
        lambda: target.queue_depth(queue) <= depth,
        timeout=FINISH_TIMEOUT,
    )

    # THEN each subtask was counted once: 100 done, remaining 0, the exact aggregate,
    # and consuming the remaining copies changed nothing after the job finished
    check_finished(done.body, status="DONE", values=values)
    again = target.call_api(api(target), "GET", accepted.headers["location"])
    assert again.body == done.body
