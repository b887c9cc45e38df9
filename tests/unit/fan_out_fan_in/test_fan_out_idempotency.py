"""Issue 16, items 5 and 6 for POST /jobs: the same request is told by its meaning
(defaults applied, fail_indexes as a set), and every replay is the first answer byte for
byte, also after the job has moved on and to concurrent twins."""

from __future__ import annotations

import pytest

from tests.support.answers import assert_all_got_the_winners_answer, assert_replayed
from tests.support.events import assert_json_error
from tests.support.interleave import interleaved
from tests.unit.fan_out_fan_in.conftest import JOB_TABLE

KEY = {"Idempotency-Key": "same-meaning"}


@pytest.mark.parametrize(
    ("first_body", "retry_body"),
    [
        ({"count": 2}, {"count": 2, "seed": 0}),
        ({"count": 2, "seed": 0}, {"count": 2}),
        ({"count": 3, "fail_indexes": [0, 1]}, {"count": 3, "fail_indexes": [1, 0]}),
        ({"items": [4, 5]}, {"items": [4, 5], "fail_indexes": [], "work_ms": 0}),
        ({"items": [4, 5]}, '{ "work_ms" : 0 , "items" : [ 4 , 5 ] }'),
    ],
    ids=["seed-default", "seed-omitted", "fail-indexes-order", "defaults", "spelling"],
)
def test_an_equivalent_body_replays_the_first_answer_byte_for_byte(
    handlers, infra, clock, first_body, retry_body
):
    # GIVEN a keyed job, run to completion (its status is no longer the first answer's)
    first = handlers.post(first_body, headers=KEY)
    assert first.status == 202
    handlers.run_to_completion()
    depth_before = infra.queue_depth()

    # WHEN the key comes back later with a body of the same meaning, spelled differently
    clock.advance(10)
    retry = handlers.post(retry_body, headers=KEY)

    # THEN the first answer comes back: status, body bytes and contract headers
    assert_replayed(retry, first)
    assert len(infra.jobs()) == 1
    assert infra.queue_depth() == depth_before


@pytest.mark.parametrize(
    ("first_body", "retry_body"),
    [
        ({"count": 2}, {"count": 2, "seed": 1}),
        ({"count": 3, "fail_indexes": [0, 1]}, {"count": 3, "fail_indexes": [0, 2]}),
        ({"items": [4, 5]}, {"items": [5, 4]}),
        ({"items": [4, 5]}, {"items": [4, 5], "work_ms": 1}),
    ],
    ids=["seed", "fail-indexes", "items-order", "work-ms"],
)
def test_a_different_meaning_with_the_same_key_is_422(handlers, infra, first_body, retry_body):
    # GIVEN a keyed job WHEN the key comes back with a different meaning
    # (the order of items is the order of subtasks: it means something)
    handlers.post(first_body, headers=KEY)
    jobs_before = infra.jobs()
    reused = handlers.post(retry_body, headers=KEY)

    # THEN 422 and nothing more is written
    assert_json_error(reused, 422, "idempotency_key_reused")
    assert infra.jobs() == jobs_before


def test_interleaved_posts_with_one_key_make_one_job_and_answer_the_same_bytes(handlers, infra):
    # GIVEN five POSTs with one key and equivalent bodies, each letting the next run to
    # the end right before its own put of the job item: all of them build the new job,
    # the innermost wins the put, the others lose it and must answer from its item
    bodies = [{"count": 4}, {"count": 4, "seed": 0}, {"seed": 0, "count": 4}] + [{"count": 4}] * 2
    # WHEN they run
    answers, first = interleaved(
        handlers.api.store._client, "PutItem", bodies, lambda b: handlers.post(b, headers=KEY)
    )

    # THEN one job with its subtasks sent once, and all answers are the winner's bytes
    assert_all_got_the_winners_answer(answers, first, 202)
    assert {a.headers["location"] for a in answers} == {first.headers["location"]}
    assert len(infra.jobs()) == 1
    assert infra.queue_depth() == 4


def test_a_job_stored_before_normalization_still_replays_its_retries(handlers, infra):
    # GIVEN a keyed count job as stored before this change: the fingerprint over the
    # request as parsed (seed null) and no stored answer
    first = handlers.post({"count": 2}, headers=KEY)
    job_id = first.body["job_id"]
    legacy_hash = handlers.service.spelled_fingerprint(handlers.messages.JobRequest(count=2))
    infra.dynamodb.update_item(
        TableName=JOB_TABLE,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET request_hash = :h REMOVE #r",
        ExpressionAttributeNames={"#r": "response"},
        ExpressionAttributeValues={":h": {"S": legacy_hash}},
    )

    # WHEN the client retries with the same body THEN it is a replay (202, same job)
    retry = handlers.post({"count": 2}, headers=KEY)
    assert retry.status == 202
    assert retry.body["job_id"] == job_id
