"""job_api.handler against moto: POST /jobs, enqueue failures and other routes."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import ANY

from botocore.exceptions import ReadTimeoutError
from handler_kit.fair_queues import message_group_id

from tests.support import handlers as handler_modules
from tests.support.answers import created_id
from tests.support.aws_faults import first_reply_lost
from tests.support.events import assert_json_error
from tests.support.fakes import START
from tests.unit.decoupled_invocation.conftest import (
    ACCOUNT_ID,
    ALICE_ARN,
    BOB_ARN,
    JOB_RETENTION_DAYS,
    JOB_TIMEOUT_SECONDS,
    RETRY_AFTER_SECONDS,
    STAGE,
    VALID,
    api_event,
    post_jobs_event,
)

# --------------------------------------------------------------------------- POST happy path


def test_post_stores_pending_job_queues_it_and_answers_202(handlers, infra):
    # GIVEN an empty table and queue
    # WHEN a client submits a valid job through the API's "api" stage
    response = handlers.post(VALID)

    # THEN it gets 202 with Location under the stage, Retry-After and the job
    job_id = created_id(response, 202, "job_id", f"/{STAGE}/jobs")
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["content-type"] == "application/json"
    assert response.body == {
        "job_id": job_id,
        "status": "PENDING",
        "created_at": "2025-03-14T09:26:53.589Z",
        "links": {"self": f"/{STAGE}/jobs/{job_id}"},
    }
    # AND exactly one PENDING item, with deadline and TTL derived from created_at
    created = int(START.timestamp())
    assert infra.items() == [
        {
            "job_id": job_id,
            "status": "PENDING",
            "created_at": "2025-03-14T09:26:53.589Z",
            "created_epoch": created,
            "deadline_epoch": created + JOB_TIMEOUT_SECONDS,
            "expires_at": created + JOB_RETENTION_DAYS * 86_400,
            "request": {**VALID, "outcome": "succeed"},
            "request_hash": handlers.models.request_hash(handlers.models.JobRequest(**VALID)),
            "updated_at": "2025-03-14T09:26:53.589Z",
            "write_token": ANY,
        }
    ]
    # AND exactly one task message naming the job
    records = infra.receive_records()
    assert [json.loads(record["body"]) for record in records] == [{"job_id": job_id}]


def test_a_post_whose_put_reply_was_lost_answers_202_and_queues_once(handlers, infra):
    # GIVEN DynamoDB storing the new job but losing the reply, so the SDK sends the same
    # put again and it fails its condition on the job it wrote
    client = handlers.roles["api"].store._client

    # WHEN a client submits a job without a key
    with first_reply_lost(client, "PutItem", lambda params: True) as lost:
        response = handlers.post(VALID)

    # THEN the put is known as its own (its write token came back): 202 and one message
    # (read as a random id already taken, it failed with a 5xx and queued nothing)
    assert lost
    job_id = created_id(response, 202, "job_id", f"/{STAGE}/jobs")
    assert [item["job_id"] for item in infra.items()] == [job_id]
    assert [json.loads(r["body"]) for r in infra.receive_records()] == [{"job_id": job_id}]


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


def test_location_falls_back_to_jobs_path_without_request_context_path(handlers):
    # GIVEN an event whose requestContext has no path (e.g. a console test invocation)
    event = post_jobs_event(VALID)
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


# --------------------------------------------------------------------------- enqueue failure


def test_send_failure_marks_job_failed_and_answers_503(handlers, infra):
    # GIVEN the task queue is gone, so SendMessage fails
    infra.sqs.delete_queue(QueueUrl=infra.queue_url)

    # WHEN a job is submitted
    response = handlers.post(VALID)

    # THEN the client is told to retry later
    assert_json_error(response, 503, "service_unavailable")
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
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


def test_a_keyed_retry_after_the_deadline_answers_the_failed_job_not_its_unsent_202(
    handlers, infra
):
    # GIVEN a keyed submission whose enqueue failed: it was answered 503, and the 202
    # stored with the job was never sent
    key = {"Idempotency-Key": "order-48"}
    infra.sqs.delete_queue(QueueUrl=infra.queue_url)
    assert handlers.post(VALID, headers=key).status == 503
    infra.sqs.create_queue(QueueName=infra.queue_url.rsplit("/", 1)[-1])

    # WHEN the client retries with the key only once the job's deadline has passed
    handlers.clock.advance(JOB_TIMEOUT_SECONDS)
    retry = handlers.post(VALID, headers=key)

    # THEN the job is not queued again, and the retry answers it as it is: FAILED
    assert retry.body["status"] == "FAILED", retry.body
    assert infra.queue_depth() == 0
    assert infra.items()[0]["error"]["code"] == "enqueue_failed"


def test_a_failed_send_whose_failure_mark_reply_was_lost_still_answers_503(handlers, infra):
    # GIVEN SendMessage failing, and DynamoDB applying the job's move to FAILED but
    # losing the reply, so the SDK's retry fails its condition on the FAILED it wrote
    infra.sqs.delete_queue(QueueUrl=infra.queue_url)
    marks = lambda params: "#error = :error" in params["UpdateExpression"]  # noqa: E731

    # WHEN a job is submitted
    with first_reply_lost(handlers.roles["api"].store._client, "UpdateItem", marks) as lost:
        response = handlers.post(VALID)

    # THEN the client is still told to retry: the job is FAILED and nothing queued it
    # (read as "a worker took it", the POST answered 202 for a job that never runs)
    assert lost
    assert_json_error(response, 503, "service_unavailable")
    assert [(item["status"], item["error"]["code"]) for item in infra.items()] == [
        ("FAILED", "enqueue_failed")
    ]


def test_a_keyed_retry_whose_rearm_reply_was_lost_still_queues_the_job(handlers, infra):
    # GIVEN a keyed submission that failed to enqueue, the queue back, and DynamoDB
    # applying the retry's move back to PENDING but losing the reply
    infra.sqs.delete_queue(QueueUrl=infra.queue_url)
    assert handlers.post(VALID, headers={"Idempotency-Key": "order-47"}).status == 503
    infra.sqs.create_queue(QueueName=infra.queue_url.rsplit("/", 1)[-1])
    rearms = lambda params: params["UpdateExpression"].startswith("SET #status = :pending")  # noqa: E731

    # WHEN the client retries with the key
    with first_reply_lost(handlers.roles["api"].store._client, "UpdateItem", rearms) as lost:
        retry = handlers.post(VALID, headers={"Idempotency-Key": "order-47"})

    # THEN the job is queued and runs to DONE (read as not rearmed, it stayed PENDING
    # with no message and read TIMED_OUT at its deadline)
    assert lost and retry.status == 202
    assert infra.queue_depth() == 1
    assert handlers.drain_queue() == {"batchItemFailures": []}
    assert infra.item(retry.body["job_id"])["status"] == "DONE"


def test_a_message_queued_after_all_runs_a_job_marked_enqueue_failed(handlers, infra):
    # GIVEN a job marked FAILED enqueue_failed (its own send failed) for which a message
    # exists all the same: a concurrent keyed retry's send succeeded and answered 202,
    # or a send's error came after SQS stored the message
    infra.sqs.delete_queue(QueueUrl=infra.queue_url)
    failed = handlers.post(VALID, headers={"Idempotency-Key": "order-46"})
    assert failed.status == 503
    job_id = infra.items()[0]["job_id"]
    infra.sqs.create_queue(QueueName=infra.queue_url.rsplit("/", 1)[-1])
    infra.sqs.send_message(QueueUrl=infra.queue_url, MessageBody=json.dumps({"job_id": job_id}))

    # WHEN the worker receives that message
    assert handlers.drain_queue() == {"batchItemFailures": []}

    # THEN the job runs to DONE instead of the message being dropped as a duplicate
    item = infra.item(job_id)
    assert item["status"] == "DONE" and "error" not in item
    assert handlers.get(job_id).body["status"] == "DONE"


class _StoredThenLost:
    """An SQS client whose SendMessage stores the message, then loses the response."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def send_message(self, **kwargs: Any) -> None:
        self._real.send_message(**kwargs)
        raise ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")


def test_an_unkeyed_job_answered_503_does_not_run_after_all(handlers, infra, monkeypatch):
    # GIVEN an unkeyed POST whose SendMessage stored the message, then timed out (503)
    queue = handlers.api.queue
    working = queue._client
    monkeypatch.setattr(queue, "_client", _StoredThenLost(working))
    assert_json_error(handlers.post(VALID), 503, "service_unavailable")
    monkeypatch.setattr(queue, "_client", working)
    # AND the client does as told: it posts again (no key, so a second job)
    assert handlers.post(VALID).status == 202

    # WHEN the worker drains the queue
    assert handlers.drain_queue() == {"batchItemFailures": []}

    # THEN the work ran once: the job answered 503 stays FAILED enqueue_failed
    statuses = sorted(item["status"] for item in infra.items())
    assert statuses == ["DONE", "FAILED"]


def test_a_send_that_failed_after_the_job_ran_and_failed_still_answers_202(
    handlers, infra, monkeypatch
):
    # GIVEN a SendMessage that stores the message and then times out, and a worker that
    # runs the job (its task fails) before the API can mark the enqueue failed
    monkeypatch.setattr(handlers.api.queue, "_client", _StoredThenLost(handlers.api.queue._client))
    mark = handlers.api.store.mark_enqueue_failed

    def worker_first(*args: Any, **kwargs: Any) -> bool:
        assert handlers.drain_queue() == {"batchItemFailures": []}
        return mark(*args, **kwargs)

    monkeypatch.setattr(handlers.api.store, "mark_enqueue_failed", worker_first)

    # WHEN the job is submitted
    response = handlers.post({**VALID, "outcome": "fail"})

    # THEN it was accepted: it ran, and its FAILED is the task's, not an enqueue failure
    assert response.status == 202, response.body
    (item,) = infra.items()
    assert (item["status"], item["error"]["code"]) == ("FAILED", "job_failed")


def test_a_keyed_retry_overtaken_by_the_worker_answers_the_running_job(
    handlers, infra, monkeypatch
):
    # GIVEN a keyed job marked FAILED enqueue_failed whose message was stored after all
    key = {"Idempotency-Key": "order-47"}
    queue = handlers.api.queue
    working = queue._client
    monkeypatch.setattr(queue, "_client", _StoredThenLost(working))
    assert handlers.post(VALID, headers=key).status == 503
    monkeypatch.setattr(queue, "_client", working)
    (item,) = infra.items()

    # WHEN a retry has read it FAILED and, before its rearm, the worker claims and runs it
    store = handlers.api.store
    rearm = store.rearm_enqueue_failed

    def worker_first(*args: Any, **kwargs: Any) -> bool:
        handlers.drain_queue()
        return rearm(*args, **kwargs)

    monkeypatch.setattr(store, "rearm_enqueue_failed", worker_first)
    retry = handlers.post(VALID, headers=key)

    # THEN the retry answers the accepted job (the first answer), not FAILED
    assert infra.item(item["job_id"])["status"] == "DONE"
    assert retry.status == 202 and retry.body["status"] != "FAILED", retry.body


# --------------------------------------------------------------------------- other routes, bugs


def test_unknown_route_is_json_404(handlers):
    # GIVEN a route the API does not have
    event = api_event("DELETE", "/jobs", resource="/jobs")

    # WHEN it reaches the function
    response = handlers.call_api(event)

    # THEN it is a JSON 404
    assert_json_error(response, 404, "not_found")


def test_unexpected_error_is_not_turned_into_a_4xx(handlers, infra):
    # GIVEN the table is missing (a deployment bug, not bad input)
    infra.dynamodb.delete_table(TableName=infra.table_name)

    # WHEN a valid job is submitted
    response = handlers.post(VALID)

    # THEN it is no 4xx, and no 503 either (no retry brings the table back): 500
    # server_error without Retry-After (logged with its traceback and counted as
    # DependencyFailed, where the bug shows), nothing queued
    assert_json_error(response, 500, "server_error")
    assert "retry-after" not in response.headers
    assert infra.queue_depth() == 0


def test_each_job_message_carries_its_callers_message_group(handlers, infra):
    # GIVEN two callers, one of whom submits two jobs
    for caller in (ALICE_ARN, BOB_ARN, ALICE_ARN):
        assert handlers.post(VALID, user_arn=caller).status == 202

    # THEN each message names its caller as its tenant (SQS fair queues): a caller's
    # backlog is served after other callers' messages, not before
    groups = handler_modules.queued_groups(infra.sqs, infra.queue_url)
    assert groups == {message_group_id(ALICE_ARN): 2, message_group_id(BOB_ARN): 1}


def test_the_sessions_of_one_role_are_one_tenant(handlers, infra):
    # GIVEN one role assumed under three session names (a client may pick any name, so
    # a backlog split over sessions must not pass for many quiet tenants), and a user
    role = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/Submitter"
    for caller in (f"{role}/run-1", f"{role}/run-2", f"{role}/run-3", ALICE_ARN):
        assert handlers.post(VALID, user_arn=caller).status == 202

    # THEN the role's three jobs share one message group, the user's is another
    groups = handler_modules.queued_groups(infra.sqs, infra.queue_url)
    assert sorted(groups.values()) == [1, 3]
    assert groups[message_group_id(role)] == 3
