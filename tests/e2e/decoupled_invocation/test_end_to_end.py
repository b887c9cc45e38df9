"""Decoupled invocation end to end: the API, the queue, the worker and the table as wired."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from localstage.target import HttpResponse, Target

from patterns.decoupled_invocation.scenarios import FINISH_TIMEOUT, STACK, poll_until_finished

DEAD_LETTER_TIMEOUT = 60.0


def _api(target: Target) -> str:
    return target.output(STACK, "ApiUrl")


def _submit(target: Target, job: dict[str, object]) -> HttpResponse:
    return target.call_api(_api(target), "POST", "jobs", json_body=job)


def test_post_answers_202_and_polling_ends_in_200_with_the_result(target: Target) -> None:
    # GIVEN a job request
    job = {"task": "e2e-happy", "input": "payload", "duration_ms": 50}

    # WHEN it is submitted and polled
    accepted = _submit(target, job)
    done = poll_until_finished(target, accepted.headers["location"])

    # THEN the API accepted it at once and the worker stored the result
    assert accepted.status == 202
    assert accepted.body["status"] == "PENDING"
    assert accepted.headers["location"] == f"/api/jobs/{accepted.body['job_id']}"
    assert "retry-after" in accepted.headers
    assert done.body["status"] == "DONE"
    assert done.body["result"] == {
        "sha256": hashlib.sha256(b"payload").hexdigest(),
        "length": 7,
        "task": "e2e-happy",
    }


def test_a_business_failure_ends_failed(target: Target) -> None:
    # GIVEN a job that fails
    accepted = _submit(target, {"task": "e2e-fail", "outcome": "fail"})

    # WHEN it has run
    finished = poll_until_finished(target, accepted.headers["location"])

    # THEN the client sees FAILED with the reason
    assert finished.body["status"] == "FAILED"
    assert finished.body["error"]["code"] == "job_failed"


def test_a_poison_message_lands_in_the_dead_letter_queue(target: Target) -> None:
    # GIVEN the task queue and its DLQ
    queue = target.output(STACK, "TaskQueueUrl")
    dead_letters = target.output(STACK, "TaskDeadLetterQueueUrl")
    before = target.queue_depth(dead_letters)

    # WHEN a message the worker cannot parse is queued
    target.send_message(queue, "this is not a task message")

    # THEN after maxReceiveCount failed receives it is in the DLQ
    target.wait_for(
        "the poison message to reach the DLQ",
        lambda: target.queue_depth(dead_letters) > before or None,
        timeout=DEAD_LETTER_TIMEOUT,
        interval=0.5,
    )
    target.wait_for(
        "the task queue to drain", lambda: target.queue_depth(queue) == 0, timeout=FINISH_TIMEOUT
    )


def test_a_duplicate_delivery_changes_nothing(target: Target) -> None:
    # GIVEN a finished job
    accepted = _submit(target, {"task": "e2e-duplicate", "input": "once"})
    job_id = accepted.body["job_id"]
    first = poll_until_finished(target, accepted.headers["location"])
    table = target.output(STACK, "JobTableName")
    stored = target.get_item(table, {"job_id": job_id})
    assert stored is not None

    # WHEN its task message is delivered again and consumed
    queue = target.output(STACK, "TaskQueueUrl")
    target.send_message(queue, json.dumps({"job_id": job_id}))
    target.wait_for(
        "the duplicate to be consumed",
        lambda: target.queue_depth(queue) == 0,
        timeout=FINISH_TIMEOUT,
    )

    # THEN the job and what the client sees are unchanged
    assert target.get_item(table, {"job_id": job_id}) == stored
    assert target.call_api(_api(target), "GET", accepted.headers["location"]).body == first.body


@pytest.mark.api_only
def test_a_bad_body_is_refused_by_the_validator_with_400(target: Target) -> None:
    # WHEN the body breaks the request model (empty task, unknown field)
    response = _submit(target, {"task": "", "unexpected": True})

    # THEN API Gateway answers 400 in the app's error shape
    assert response.status == 400
    assert response.body == {"error": "invalid_request", "message": "Invalid request body"}


@pytest.mark.api_only
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_the_validator_reads_a_body_whatever_its_content_type(
    target: Target, content_type: str
) -> None:
    # WHEN a body that breaks the request model is sent as another media type (API
    # Gateway validates only against a model for the request's type, or `$default`)
    body = json.dumps({"task": "", "unexpected": True})
    response = target.call_api(
        _api(target), "POST", "jobs", body=body, headers={"Content-Type": content_type}
    )

    # THEN API Gateway refuses it all the same, before the function runs
    assert response.status == 400
    assert response.body == {"error": "invalid_request", "message": "Invalid request body"}


@pytest.mark.api_only
@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/xml", 415),
        ("application/json; charset=latin-1", 415),
        ("Application/JSON; charset=UTF-8", 202),
    ],
)
def test_a_valid_body_declared_as_another_media_type_is_415_from_the_function(
    target: Target, content_type: str, status: int
) -> None:
    # WHEN a body that fits the request model is sent declared as some media type (API
    # Gateway's `$default` model passes it on to the function whatever the type). No
    # Content-Type at all cannot be sent from here: urllib, like `curl -d`, then
    # declares application/x-www-form-urlencoded (and gets a 415 too)
    body = json.dumps({"task": "e2e-media-type"})
    headers = {"Content-Type": content_type}
    response = target.call_api(_api(target), "POST", "jobs", body=body, headers=headers)

    # THEN the function reads JSON only: another media type or charset is 415 in the
    # app's error shape, a spelling of JSON (or no Content-Type) is accepted
    assert response.status == status, response.body
    if status == 415:
        assert response.body["error"] == "unsupported_media_type"


@pytest.mark.api_only
def test_a_gzip_body_is_read_decompressed_and_one_not_in_gzip_is_415(target: Target) -> None:
    # GIVEN a job's body compressed with gzip, and the same body uncompressed but
    # labelled gzip
    body = json.dumps({"task": "e2e-gzip", "input": "zipped"}).encode()
    coded = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    table = target.output(STACK, "JobTableName")
    jobs_before = len(target.scan_items(table))

    # WHEN each is posted
    zipped = target.call_api(_api(target), "POST", "jobs", body=gzip.compress(body), headers=coded)
    mislabelled = target.call_api(_api(target), "POST", "jobs", body=body, headers=coded)

    # THEN API Gateway decompresses the first (by default) and the function, which sees
    # the header still on, reads the result as JSON: the job is accepted as sent
    assert zipped.status == 202, zipped.body
    stored = target.get_item(table, {"job_id": zipped.body["job_id"]})
    assert stored is not None and stored["request"]["task"] == "e2e-gzip"
    # AND the second is refused by API Gateway in the app's error shape: nothing written
    assert mislabelled.status == 415, mislabelled.body
    assert mislabelled.body["error"] == "unsupported_media_type"
    assert len(target.scan_items(table)) == jobs_before + 1


@pytest.mark.api_only
def test_a_folded_idempotency_key_is_400_and_creates_nothing(target: Target) -> None:
    # WHEN the key arrives as one line holding two keys (an intermediary folds repeats)
    response = target.call_api(
        _api(target),
        "POST",
        "jobs",
        json_body={"task": "e2e-folded-key"},
        headers={"Idempotency-Key": "e2e-k, e2e-k"},
    )

    # THEN the function refuses the ambiguous key
    assert response.status == 400
    assert response.body["error"] == "ambiguous_idempotency_key"


@pytest.mark.api_only
def test_an_unsigned_request_is_refused_with_403(target: Target) -> None:
    # WHEN a request carries no SigV4 signature
    response = target.call_api(_api(target), "POST", "jobs", json_body={"task": "x"}, signed=False)

    # THEN IAM authorization refuses it before any function runs
    assert response.status == 403
    assert response.body == {"error": "client_error", "message": "Missing Authentication Token"}
