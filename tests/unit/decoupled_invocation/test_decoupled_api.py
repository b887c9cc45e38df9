"""job_api.handler: POST /jobs and GET /jobs/{job_id} against moto."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.events import assert_json_error

VALID = {"task": "thumbnail.resize-v2", "input": "hello world", "duration_ms": 250}


def assert_nothing_written(infra: Any) -> None:
    assert infra.items() == []
    assert infra.queue_depth() == 0


# --------------------------------------------------------------------------- POST happy path


def test_post_stores_pending_job_queues_it_and_answers_202(handlers, infra, events):
    # GIVEN an empty table and queue
    # WHEN a client submits a valid job through the API's "api" stage
    response = handlers.post(VALID)

    # THEN it gets 202 with Location under the stage, Retry-After and the job
    assert response.status == 202
    job_id = response.body["job_id"]
    assert uuid.UUID(job_id).version == 4
    assert response.headers["location"] == f"/{events.stage}/jobs/{job_id}"
    assert response.headers["retry-after"] == str(events.retry_after_seconds)
    assert response.headers["content-type"] == "application/json"
    assert response.body == {
        "job_id": job_id,
        "status": "PENDING",
        "created_at": "2025-03-14T09:26:53.589Z",
        "links": {"self": f"/{events.stage}/jobs/{job_id}"},
    }
    # AND exactly one PENDING item, with deadline and TTL derived from created_at
    created = int(events.start.timestamp())
    assert infra.items() == [
        {
            "job_id": job_id,
            "status": "PENDING",
            "created_at": "2025-03-14T09:26:53.589Z",
            "created_epoch": created,
            "deadline_epoch": created + events.job_timeout_seconds,
            "expires_at": created + events.job_retention_days * 86_400,
            "request": {**VALID, "outcome": "succeed"},
            "request_hash": handlers.models.request_hash(handlers.models.JobRequest(**VALID)),
            "attempts": 0,
            "updated_at": "2025-03-14T09:26:53.589Z",
        }
    ]
    # AND exactly one task message naming the job
    records = infra.receive_records()
    assert [json.loads(record["body"]) for record in records] == [{"job_id": job_id}]


def test_post_applies_defaults_for_optional_fields(handlers, infra):
    # GIVEN a body with only the task
    # WHEN it is submitted
    response = handlers.post({"task": "noop"})

    # THEN the stored request carries the defaults
    assert response.status == 202
    assert infra.items()[0]["request"] == {
        "task": "noop",
        "input": "",
        "duration_ms": 0,
        "outcome": "succeed",
    }


def test_location_falls_back_to_jobs_path_without_request_context_path(handlers, events):
    # GIVEN an event whose requestContext has no path (e.g. a console test invocation)
    event = events.post_jobs(VALID)
    del event["requestContext"]["path"]

    # WHEN it is submitted
    response = handlers.call_api(event)

    # THEN Location falls back to /jobs/{id}
    assert response.status == 202
    assert response.headers["location"] == f"/jobs/{response.body['job_id']}"


def test_post_accepts_base64_encoded_body(handlers, infra):
    # GIVEN a body API Gateway passed base64-encoded (binary media type)
    # WHEN it is submitted
    response = handlers.post(VALID, base64_body=True)

    # THEN it is decoded and accepted like a plain body
    assert response.status == 202
    assert infra.items()[0]["request"]["input"] == "hello world"


# --------------------------------------------------------------------------- POST bad input


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param('{"task": "resize",', "JSON", id="malformed-json"),
        pytest.param("not json at all", "JSON", id="not-json"),
        pytest.param('["resize"]', "object", id="json-array"),
        pytest.param('"resize"', "object", id="json-string"),
        pytest.param(None, "body", id="no-body"),
        pytest.param("   ", "body", id="blank-body"),
        pytest.param({"input": "x"}, "task", id="missing-task"),
        pytest.param({"task": 5}, "task", id="task-not-string"),
        pytest.param({"task": ""}, "task", id="task-empty"),
        pytest.param({"task": "re size"}, "task", id="task-bad-characters"),
        pytest.param({"task": "t" * 65}, "task", id="task-too-long"),
        pytest.param({"task": "a", "input": 42}, "input", id="input-not-string"),
        pytest.param({"task": "a", "input": "x" * 4097}, "input", id="input-too-long"),
        pytest.param({"task": "a", "duration_ms": "100"}, "duration_ms", id="duration-string"),
        pytest.param({"task": "a", "duration_ms": True}, "duration_ms", id="duration-bool"),
        pytest.param({"task": "a", "duration_ms": 1.5}, "duration_ms", id="duration-float"),
        pytest.param({"task": "a", "duration_ms": -1}, "duration_ms", id="duration-negative"),
        pytest.param({"task": "a", "duration_ms": 10_001}, "duration_ms", id="duration-too-big"),
        pytest.param({"task": "a", "outcome": "explode"}, "outcome", id="outcome-unknown"),
        pytest.param({"task": "a", "outcome": None}, "outcome", id="outcome-null"),
        pytest.param({"task": "a", "priority": 1}, "priority", id="extra-field"),
    ],
)
def test_post_rejects_bad_body_with_400_and_writes_nothing(handlers, infra, body, named):
    # GIVEN a body that breaks the contract
    # WHEN it is submitted
    response = handlers.post(body)

    # THEN it is a JSON 400 whose message names the problem
    assert_json_error(response, 400, "invalid_request")
    assert named in response.body["message"]
    # AND nothing was stored or queued
    assert_nothing_written(infra)


def test_post_rejects_body_over_16_kib_with_400(handlers, infra):
    # GIVEN valid JSON padded to one byte over 16 KiB
    body = '{"task": "a"}'
    body += " " * (16 * 1024 + 1 - len(body))

    # WHEN it is submitted
    response = handlers.post(body)

    # THEN it is refused as too large before parsing
    assert_json_error(response, 400, "payload_too_large")
    assert_nothing_written(infra)


def test_post_accepts_body_of_exactly_16_kib(handlers, infra):
    # GIVEN valid JSON padded to exactly 16 KiB
    body = '{"task": "a"}'
    body += " " * (16 * 1024 - len(body))

    # WHEN it is submitted
    response = handlers.post(body)

    # THEN it is accepted
    assert response.status == 202


def test_post_measures_bytes_not_characters(handlers, infra):
    # GIVEN raw UTF-8 JSON of ~4,100 characters, 4,096 of them 4 bytes long (over 16 KiB)
    body = json.dumps({"task": "a", "input": "\U0001f600" * 4096}, ensure_ascii=False)
    assert len(body) < 16 * 1024 < len(body.encode("utf-8"))

    # WHEN it is submitted
    response = handlers.post(body)

    # THEN the body is over 16 KiB and refused even though the field is within its limit
    assert_json_error(response, 400, "payload_too_large")
    assert_nothing_written(infra)


def test_post_rejects_oversize_base64_body_with_400(handlers, infra):
    # GIVEN a base64 body that decodes to more than 16 KiB
    body = '{"task": "a"}' + " " * (16 * 1024)

    # WHEN it is submitted
    response = handlers.post(body, base64_body=True)

    # THEN it is too large
    assert_json_error(response, 400, "payload_too_large")
    assert_nothing_written(infra)


@pytest.mark.parametrize(
    "raw_body",
    [
        pytest.param("not base64!!", id="not-base64"),
        pytest.param(base64.b64encode(b"\xff\xfe\x00task").decode(), id="not-utf8"),
    ],
)
def test_post_rejects_undecodable_base64_body_with_400(handlers, infra, events, raw_body):
    # GIVEN a body flagged base64 that is not base64 of UTF-8 JSON
    event = events.post_jobs(raw_body)
    event["isBase64Encoded"] = True

    # WHEN it is submitted
    response = handlers.call_api(event)

    # THEN it is a 400, never a 500
    assert_json_error(response, 400, "invalid_request")
    assert_nothing_written(infra)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * 129, id="too-long"),
        pytest.param("clé-1", id="non-ascii"),
        pytest.param("tab\there", id="control-character"),
    ],
)
def test_post_rejects_bad_idempotency_key_with_400(handlers, infra, key):
    # GIVEN a valid body with an invalid Idempotency-Key
    # WHEN it is submitted
    response = handlers.post(VALID, headers={"Idempotency-Key": key})

    # THEN it is a 400 naming the header, and nothing is written
    assert_json_error(response, 400, "invalid_request")
    assert "Idempotency-Key" in response.body["message"]
    assert_nothing_written(infra)


def test_post_rejects_conflicting_repeated_idempotency_keys(handlers, infra, events):
    # GIVEN the header sent twice with different values
    event = events.post_jobs(VALID, headers={"Idempotency-Key": "k-2"})
    event["multiValueHeaders"]["Idempotency-Key"] = ["k-1", "k-2"]

    # WHEN it is submitted
    response = handlers.call_api(event)

    # THEN the request is ambiguous: 400
    assert_json_error(response, 400, "invalid_request")
    assert_nothing_written(infra)


# --------------------------------------------------------------------------- idempotency


def test_retry_with_same_key_returns_same_job_and_requeues_pending(handlers, infra, events):
    # GIVEN a job submitted with an Idempotency-Key
    first = handlers.post(VALID, headers={"Idempotency-Key": "order-42"})

    # WHEN the client retries with the same key (header name in another case)
    retry = handlers.post(VALID, headers={"idempotency-key": "order-42"})

    # THEN both answers name the same deterministic job
    assert first.status == retry.status == 202
    job_id = first.body["job_id"]
    assert retry.body["job_id"] == job_id
    assert job_id == handlers.models.job_id_for(events.alice_arn, "order-42")
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


def test_same_key_from_different_callers_makes_different_jobs(handlers, infra, events):
    # GIVEN alice submitted a job with a key
    alice = handlers.post(VALID, headers={"Idempotency-Key": "shared"}, user_arn=events.alice_arn)

    # WHEN bob uses the same key with another body
    bob = handlers.post(
        {"task": "other"}, headers={"Idempotency-Key": "shared"}, user_arn=events.bob_arn
    )

    # THEN each caller has their own job
    assert alice.status == bob.status == 202
    assert alice.body["job_id"] != bob.body["job_id"]
    assert len(infra.items()) == 2


# --------------------------------------------------------------------------- enqueue failure


def test_send_failure_marks_job_failed_and_answers_503(handlers, infra, events):
    # GIVEN the task queue is gone, so SendMessage fails
    infra.sqs.delete_queue(QueueUrl=infra.queue_url)

    # WHEN a job is submitted
    response = handlers.post(VALID)

    # THEN the client is told to retry later
    assert_json_error(response, 503, "service_unavailable")
    assert response.headers["retry-after"] == str(events.retry_after_seconds)
    # AND the stored job is FAILED with enqueue_failed (written first, then marked)
    [item] = infra.items()
    assert item["status"] == "FAILED"
    assert item["error"]["code"] == "enqueue_failed"


def test_keyed_retry_after_send_failure_requeues_the_job(handlers, infra):
    # GIVEN a keyed submission that failed to enqueue
    infra.sqs.delete_queue(QueueUrl=infra.queue_url)
    failed = handlers.post(VALID, headers={"Idempotency-Key": "order-45"})
    assert failed.status == 503

    # WHEN the queue is back and the client retries with the same key
    infra.sqs.create_queue(QueueName=infra.queue_url.rsplit("/", 1)[-1])
    retry = handlers.post(VALID, headers={"Idempotency-Key": "order-45"})

    # THEN the same job is PENDING again, queued once, and runs to DONE
    assert retry.status == 202
    assert retry.body["status"] == "PENDING"
    [item] = infra.items()
    assert item["job_id"] == retry.body["job_id"]
    assert item["status"] == "PENDING"
    assert "error" not in item
    assert infra.queue_depth() == 1
    assert handlers.drain_queue() == {"batchItemFailures": []}
    assert infra.item(item["job_id"])["status"] == "DONE"


# --------------------------------------------------------------------------- GET


def test_get_pending_job_is_202_with_retry_after(handlers, events):
    # GIVEN a submitted job
    job_id = handlers.post(VALID).body["job_id"]

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it is still in progress: 202 with Retry-After
    assert response.status == 202
    assert response.headers["retry-after"] == str(events.retry_after_seconds)
    assert response.body == {
        "job_id": job_id,
        "status": "PENDING",
        "created_at": "2025-03-14T09:26:53.589Z",
        "updated_at": "2025-03-14T09:26:53.589Z",
    }


def test_get_running_job_is_202(handlers, infra):
    # GIVEN a job a worker has claimed
    job_id = handlers.post(VALID).body["job_id"]
    store = handlers.api.store
    claimed = store.claim(
        job_id,
        lease_owner="m-1",
        lease_expires_epoch=handlers.clock.epoch + 30,
        now=handlers.clock(),
    )
    assert claimed is not None

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it is 202 RUNNING
    assert response.status == 202
    assert response.body["status"] == "RUNNING"


def test_get_done_job_is_200_with_result(handlers):
    # GIVEN a job that ran to completion
    job_id = handlers.post(VALID).body["job_id"]
    handlers.drain_queue()

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it gets 200 with the deterministic result and no Retry-After
    assert response.status == 200
    assert "retry-after" not in response.headers
    assert response.body["status"] == "DONE"
    assert response.body["result"] == {
        "sha256": "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        "length": 11,
        "task": "thumbnail.resize-v2",
    }
    assert response.body["updated_at"] == "2025-03-14T09:26:53.839Z"  # after 250 ms of work


def test_get_failed_job_is_200_with_error(handlers):
    # GIVEN a job whose work failed
    job_id = handlers.post({**VALID, "outcome": "fail"}).body["job_id"]
    handlers.drain_queue()

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it gets 200 with the error
    assert response.status == 200
    assert response.body["status"] == "FAILED"
    assert response.body["error"]["code"] == "job_failed"
    assert "result" not in response.body


def test_get_past_deadline_reports_timed_out_without_writing(handlers, infra, events):
    # GIVEN a job nobody ran, and its deadline has passed
    job_id = handlers.post(VALID).body["job_id"]
    before = infra.items()
    handlers.clock.advance(events.job_timeout_seconds)

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it is finished as TIMED_OUT with an error
    assert response.status == 200
    assert response.body["status"] == "TIMED_OUT"
    assert response.body["error"]["code"] == "timed_out"
    assert "300 seconds" in response.body["error"]["message"]
    # AND the read did not write
    assert infra.items() == before


def test_get_one_second_before_deadline_is_still_in_progress(handlers, events):
    # GIVEN a job one second before its deadline
    job_id = handlers.post(VALID).body["job_id"]
    handlers.clock.advance(events.job_timeout_seconds - 1)

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it is still PENDING
    assert response.status == 202
    assert response.body["status"] == "PENDING"


def test_get_stored_timed_out_job_is_200(handlers, events):
    # GIVEN a worker picked the job up after its deadline and stored TIMED_OUT
    job_id = handlers.post(VALID).body["job_id"]
    handlers.clock.advance(events.job_timeout_seconds + 5)
    handlers.drain_queue()

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it is 200 TIMED_OUT with the stored error
    assert response.status == 200
    assert response.body["status"] == "TIMED_OUT"
    assert response.body["error"]["code"] == "timed_out"


def test_get_accepts_upper_case_uuid(handlers):
    # GIVEN a job
    job_id = handlers.post(VALID).body["job_id"]

    # WHEN it is polled with its id in upper case
    response = handlers.get(job_id.upper())

    # THEN it is found
    assert response.status == 202
    assert response.body["job_id"] == job_id


def test_get_unknown_job_is_404(handlers):
    # GIVEN no job with this id
    # WHEN it is polled
    response = handlers.get(str(uuid.uuid4()))

    # THEN it is a JSON 404
    assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize("job_id", ["not-a-uuid", "1234", "6f0c4c1e3a7d5b8e9f512d7c0b4a9e63"])
def test_get_with_malformed_id_is_400(handlers, job_id):
    # GIVEN an id that is not a UUID
    # WHEN it is polled
    response = handlers.get(job_id)

    # THEN it is a JSON 400
    assert_json_error(response, 400, "invalid_request")


# --------------------------------------------------------------------------- other routes, bugs


def test_unknown_route_is_json_404(handlers, events):
    # GIVEN a route the API does not have
    event = events.api_event("DELETE", "/jobs", resource="/jobs")

    # WHEN it reaches the function
    response = handlers.call_api(event)

    # THEN it is a JSON 404
    assert_json_error(response, 404, "not_found")


def test_unexpected_error_is_not_turned_into_a_4xx(handlers, infra):
    # GIVEN the table is missing (a deployment bug, not bad input)
    infra.dynamodb.delete_table(TableName=infra.table_name)

    # WHEN a valid job is submitted
    # THEN the error propagates (Lambda error: API Gateway answers 502), it is no 4xx
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        handlers.post(VALID)
