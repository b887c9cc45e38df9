"""fan_out_api.handler against moto: bad input and idempotency keys on POST /jobs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.events import assert_json_error
from tests.unit.fan_out_fan_in.api_helpers import (
    ARN_PREFIX,
    assert_nothing_written,
    count_send_calls,
)
from tests.unit.fan_out_fan_in.conftest import post_jobs_event

# --------------------------------------------------------------------------- bad input


TOO_MANY = {"items": [1] * 10_001}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(None, id="no-body"),
        pytest.param("", id="empty-body"),
        pytest.param("   ", id="blank-body"),
        pytest.param("{not json", id="malformed-json"),
        pytest.param("[1, 2]", id="array-body"),
        pytest.param({}, id="no-items-no-count"),
        pytest.param({"items": []}, id="n-zero-items"),
        pytest.param({"count": 0}, id="n-zero-count"),
        pytest.param({"count": -3}, id="negative-count"),
        pytest.param({"count": 10_001}, id="count-over-limit"),
        pytest.param(TOO_MANY, id="items-over-limit"),
        pytest.param({"items": [1, "2"]}, id="item-string"),
        pytest.param({"items": [1.5]}, id="item-float"),
        pytest.param({"items": [True]}, id="item-bool"),
        pytest.param({"items": [None]}, id="item-null"),
        pytest.param({"items": [[1]]}, id="item-nested"),
        pytest.param({"items": [10**12]}, id="item-too-large"),
        pytest.param({"items": [900_001]}, id="item-square-past-exact-sums"),
        pytest.param({"items": [-900_001]}, id="item-negative-square-past-exact-sums"),
        pytest.param({"items": "1,2,3"}, id="items-not-list"),
        pytest.param({"count": "5"}, id="count-string"),
        pytest.param({"count": 5, "items": [1]}, id="count-and-items"),
        pytest.param({"items": [1], "seed": 3}, id="seed-without-count"),
        pytest.param({"count": 5, "fail_indexes": [5]}, id="fail-index-outside-job"),
        pytest.param({"count": 5, "fail_indexes": [1, 1]}, id="fail-index-repeated"),
        pytest.param({"count": 5, "fail_indexes": [-1]}, id="fail-index-negative"),
        pytest.param({"count": 5, "work_ms": 5_000}, id="work-too-long"),
        pytest.param({"count": 5, "extra": 1}, id="unknown-field"),
    ],
)
def test_bad_input_is_a_json_400_and_writes_nothing(handlers, infra, body):
    # GIVEN a body the API must refuse
    # WHEN it is posted
    response = handlers.post(body)

    # THEN the client gets a JSON 400, and nothing is written or sent
    assert_json_error(response, 400, "invalid_request")
    assert_nothing_written(infra)


def test_oversized_body_is_a_json_400_and_writes_nothing(handlers, infra):
    # GIVEN a body over 256 KiB (whitespace padding keeps it valid JSON)
    body = '{"items": [1]' + " " * (256 * 1024) + "}"

    # WHEN it is posted
    response = handlers.post(body)

    # THEN it is refused before parsing
    assert_json_error(response, 400, "payload_too_large")
    assert_nothing_written(infra)


def test_invalid_base64_body_is_a_json_400(handlers, infra):
    # GIVEN a base64-flagged body that does not decode
    event = post_jobs_event("@@@not base64@@@")
    event["isBase64Encoded"] = True

    # WHEN it is posted  THEN 400 and nothing written
    assert_json_error(handlers.call_api(event), 400, "invalid_request")
    assert_nothing_written(infra)


def test_base64_body_is_accepted(handlers, infra):
    # GIVEN a valid body that API Gateway base64-encoded
    # WHEN it is posted  THEN the job is accepted like a plain one
    response = handlers.post({"items": [1, 2]}, base64_body=True)
    assert response.status == 202
    assert infra.queue_depth() == 2


# --------------------------------------------------------------------------- idempotency


def test_a_retry_with_the_same_key_answers_the_same_job_and_sends_nothing_more(handlers, infra):
    # GIVEN a job of 25 subtasks submitted with an Idempotency-Key
    job = {"count": 25, "seed": 3}
    first = handlers.post(job, headers={"Idempotency-Key": "batch-7"})
    assert first.status == 202
    sends = count_send_calls(handlers.api)

    # WHEN the client retries it (lost response), header name in another case
    retry = handlers.post(job, headers={"idempotency-key": "batch-7"})

    # THEN it gets the same job, and no subtask was sent a second time
    assert retry.status == 202
    assert retry.body["job_id"] == first.body["job_id"]
    assert retry.headers["location"] == first.headers["location"]
    assert sends == []
    assert len(infra.jobs()) == 1
    assert infra.queue_depth() == 25


def test_the_same_key_with_another_body_is_422_and_writes_nothing_more(handlers, infra):
    # GIVEN a keyed job
    first = handlers.post({"items": [1, 2]}, headers={"Idempotency-Key": "batch-8"})

    # WHEN the key is reused for a different job
    reused = handlers.post({"items": [1, 2, 3]}, headers={"Idempotency-Key": "batch-8"})

    # THEN it is refused and the first job is all there is
    assert_json_error(reused, 422, "idempotency_key_reused")
    assert [job["job_id"] for job in infra.jobs()] == [first.body["job_id"]]
    assert infra.jobs()[0]["total"] == 2
    assert infra.queue_depth() == 2


def test_the_same_key_from_two_callers_makes_two_jobs(handlers, infra):
    # GIVEN two callers using the same key for the same body
    headers = {"Idempotency-Key": "shared"}
    alice = handlers.call_api(
        post_jobs_event({"items": [5]}, headers=headers, user_arn=f"{ARN_PREFIX}:user/alice")
    )
    bob = handlers.call_api(
        post_jobs_event({"items": [5]}, headers=headers, user_arn=f"{ARN_PREFIX}:user/bob")
    )

    # THEN each has a job of its own
    assert alice.status == bob.status == 202
    assert alice.body["job_id"] != bob.body["job_id"]
    assert infra.queue_depth() == 2


def test_a_keyed_retry_from_another_session_of_the_role_sends_no_subtask_twice(handlers, infra):
    # GIVEN a job of 5 subtasks posted with a key from a role session
    role = f"{ARN_PREFIX.replace(':iam::', ':sts::')}:assumed-role/Submitter"
    headers = {"Idempotency-Key": "batch-7"}
    first = handlers.call_api(
        post_jobs_event({"count": 5, "seed": 1}, headers=headers, user_arn=f"{role}/run-1")
    )

    # WHEN the client retries from a new process, under another session name
    retry = handlers.call_api(
        post_jobs_event({"count": 5, "seed": 1}, headers=headers, user_arn=f"{role}/run-2")
    )

    # THEN it is the same job: one job, its 5 subtasks sent once
    assert first.status == retry.status == 202
    assert retry.body["job_id"] == first.body["job_id"]
    assert len(infra.jobs()) == 1 and infra.queue_depth() == 5


@pytest.mark.parametrize("key", ["", "x" * 129, "tab\there"], ids=["empty", "too-long", "tab"])
def test_a_bad_idempotency_key_is_400_and_nothing_is_written(handlers, infra, key):
    # GIVEN a valid job with an invalid key WHEN it is submitted
    response = handlers.post({"items": [1]}, headers={"Idempotency-Key": key})

    # THEN 400 naming the header, nothing written or sent
    assert_json_error(response, 400, "invalid_request")
    assert "Idempotency-Key" in response.body["message"]
    assert_nothing_written(infra)


# ----------------------------------------------------------------------------- capacity


def test_a_job_its_workers_cannot_finish_in_time_is_refused_and_writes_nothing(handlers, infra):
    # GIVEN the stage's 5 concurrent workers and 900 s jobs: 450 s of work per job, so
    # 2,250 subtasks of 1 s at most (a bigger one would end TIMED_OUT after holding
    # every worker, every other job of the stage with it)
    # WHEN one subtask more is posted
    response = handlers.post({"count": 2251, "work_ms": 1000})

    # THEN it is a JSON 400 that says what to change, and nothing is written or sent
    assert_json_error(response, 400, "invalid_request")
    assert "lower count or work_ms" in response.body["message"]
    assert_nothing_written(infra)
    # AND the largest job that fits is accepted
    assert handlers.post({"count": 2250, "work_ms": 1000}).status == 202


def test_every_aggregate_of_the_largest_job_is_exact_as_a_double(handlers, infra):
    # GIVEN the item limit, and a job at both ends of it
    limit = handlers.models.VALUE_LIMIT
    # THEN the largest possible sum of squares reads exactly as a double (2^53), so a
    # JavaScript client gets the figures the API computed
    assert 10_000 * limit**2 < 2**53
    assert handlers.post({"items": [limit, -limit]}).status == 202


def test_a_keyed_retry_of_a_job_admitted_before_a_tighter_setting_replays(
    handlers, infra, monkeypatch
):
    # GIVEN a keyed job at the limit, admitted
    body, key = {"count": 2250, "work_ms": 1000}, {"Idempotency-Key": "big-job"}
    first = handlers.post(body, headers=key)
    assert first.status == 202
    # WHEN a deploy lowers the workers' concurrency and the client retries with the key
    settings = handlers.api.SETTINGS
    monkeypatch.setattr(handlers.api, "SETTINGS", replace(settings, worker_max_concurrency=1))
    retry = handlers.post(body, headers=key)
    # THEN the retry is answered the first answer, and a new job of that size is refused
    assert (retry.status, retry.raw_body) == (first.status, first.raw_body)
    assert handlers.post(body, headers={"Idempotency-Key": "other"}).status == 400
    assert len(infra.jobs()) == 1
