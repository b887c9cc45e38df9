"""job_api.handler against moto: idempotency keys on POST /jobs."""

from __future__ import annotations

from tests.support.events import assert_json_error
from tests.unit.decoupled_invocation.conftest import ALICE_ARN, BOB_ARN, VALID

# --------------------------------------------------------------------------- idempotency


def test_retry_with_same_key_returns_same_job_and_requeues_pending(handlers, infra):
    # GIVEN a job submitted with an Idempotency-Key
    first = handlers.post(VALID, headers={"Idempotency-Key": "order-42"})

    # WHEN the client retries with the same key (header name in another case)
    retry = handlers.post(VALID, headers={"idempotency-key": "order-42"})

    # THEN both answers name the same deterministic job
    assert first.status == retry.status == 202
    job_id = first.body["job_id"]
    assert retry.body["job_id"] == job_id
    assert job_id == handlers.models.job_id_for(ALICE_ARN, "order-42")
    assert retry.headers["location"] == first.headers["location"]
    # AND there is still one item, and the still-PENDING job was queued again
    items = infra.items()
    assert [item["job_id"] for item in items] == [job_id]
    assert items[0]["idempotency_key"] == "order-42"
    assert infra.queue_depth() == 2


def test_retry_with_same_key_after_completion_does_not_requeue(handlers, infra):
    # GIVEN a keyed job that has already run
    first = handlers.post(VALID, headers={"Idempotency-Key": "order-43"})
    handlers.drain_queue()

    # WHEN the client retries with the same key and body
    retry = handlers.post(VALID, headers={"Idempotency-Key": "order-43"})

    # THEN it gets the first answer byte for byte (the job's state now is for GET to
    # tell) and nothing new is queued
    assert retry.status == 202
    assert retry.raw_body == first.raw_body
    assert retry.body["status"] == "PENDING"
    assert handlers.get(first.body["job_id"]).body["status"] == "DONE"
    assert infra.queue_depth() == 0


def test_retry_with_same_key_and_explicit_defaults_is_the_same_request(handlers, infra):
    # GIVEN a keyed job submitted with defaults left out
    first = handlers.post({"task": "a"}, headers={"Idempotency-Key": "k"})

    # WHEN it is retried with the defaults spelled out
    retry = handlers.post(
        {"task": "a", "input": "", "duration_ms": 0, "outcome": "succeed"},
        headers={"Idempotency-Key": "k"},
    )

    # THEN it is recognised as the same request
    assert retry.status == 202
    assert retry.body["job_id"] == first.body["job_id"]


def test_same_key_with_different_body_is_422_and_changes_nothing(handlers, infra):
    # GIVEN a keyed job
    handlers.post(VALID, headers={"Idempotency-Key": "order-44"})
    before = infra.items()

    # WHEN the same key comes with a different body
    response = handlers.post({**VALID, "input": "other"}, headers={"Idempotency-Key": "order-44"})

    # THEN it is refused and the job is untouched, nothing more queued
    assert_json_error(response, 422, "idempotency_key_reused")
    assert infra.items() == before
    assert infra.queue_depth() == 1


def test_same_key_from_different_callers_makes_different_jobs(handlers, infra):
    # GIVEN alice submitted a job with a key
    alice = handlers.post(VALID, headers={"Idempotency-Key": "shared"}, user_arn=ALICE_ARN)

    # WHEN bob uses the same key with another body
    bob = handlers.post({"task": "other"}, headers={"Idempotency-Key": "shared"}, user_arn=BOB_ARN)

    # THEN each caller has their own job
    assert alice.status == bob.status == 202
    assert alice.body["job_id"] != bob.body["job_id"]
    assert len(infra.items()) == 2


def test_a_keyed_retry_from_another_session_of_the_role_replays_the_first_answer(handlers, infra):
    # GIVEN a job posted with a key from a role session botocore named for its process
    role = "arn:aws:sts::123456789012:assumed-role/Submitter"
    key = {"Idempotency-Key": "order-42"}
    first = handlers.post(VALID, headers=key, user_arn=f"{role}/botocore-session-1700000000")

    # WHEN the client restarts and retries under the session name its new process got
    retry = handlers.post(VALID, headers=key, user_arn=f"{role}/botocore-session-1700003600")

    # THEN the retry is the first answer byte for byte, and there is one job (queued
    # again while PENDING, as any keyed retry of it would be)
    assert first.status == retry.status == 202
    assert retry.raw_body == first.raw_body
    assert [item["job_id"] for item in infra.items()] == [first.body["job_id"]]
