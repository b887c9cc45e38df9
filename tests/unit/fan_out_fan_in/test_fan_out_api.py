"""fan_out_api.handler: POST /jobs (the ventilator) and GET /jobs/{job_id} against moto."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.events import ACCOUNT_ID, assert_json_error
from tests.unit.fan_out_fan_in.conftest import post_jobs_event

ARN_PREFIX = f"arn:aws:iam::{ACCOUNT_ID}"


def assert_nothing_written(infra: Any) -> None:
    assert infra.jobs() == []
    assert infra.results() == []
    assert infra.queue_depth() == 0


def queued_bodies(infra: Any) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while records := infra.receive_records():
        bodies += [json.loads(record["body"]) for record in records]
    return bodies


def count_send_calls(api: Any) -> list[int]:
    """Record the number of entries of every SendMessageBatch the ventilator makes."""
    calls: list[int] = []

    def before_call(params: dict[str, Any], **_: Any) -> None:
        calls.append(len(params["Entries"]))

    api.queue._client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", before_call
    )
    return calls


# --------------------------------------------------------------------------- POST happy path


def test_post_one_item_records_the_job_then_sends_one_subtask(handlers, infra, events):
    # GIVEN an empty table and queue
    # WHEN a client submits a job of one item
    response = handlers.post({"items": [7]})

    # THEN it gets 202 with Location under the stage and Retry-After
    assert response.status == 202
    job_id = response.body["job_id"]
    assert uuid.UUID(job_id).version == 4
    assert response.headers["location"] == f"/{events.stage}/jobs/{job_id}"
    assert response.headers["retry-after"] == str(events.retry_after_seconds)
    assert response.body == {
        "job_id": job_id,
        "status": "RUNNING",
        "total": 1,
        "created_at": "2025-03-14T09:26:53.589Z",
        "links": {"self": f"/{events.stage}/jobs/{job_id}"},
    }
    # AND the job item holds the counter at N before any subtask was counted
    created = int(events.start.timestamp())
    assert infra.jobs() == [
        {
            "job_id": job_id,
            "status": "RUNNING",
            "total": 1,
            "remaining": 1,
            "done": 0,
            "failed": 0,
            "created_at": "2025-03-14T09:26:53.589Z",
            "created_epoch": created,
            "deadline_epoch": created + events.job_timeout_seconds,
            "expires_at": created + events.job_timeout_seconds + 7 * 86_400,
            "updated_at": "2025-03-14T09:26:53.589Z",
            "request": {"source": "items", "fail_indexes": [], "work_ms": 0},
        }
    ]
    # AND exactly one subtask message
    assert queued_bodies(infra) == [{"job_id": job_id, "index": 0, "value": 7}]


def test_post_count_and_seed_sends_every_subtask_ten_per_call(handlers, infra):
    # GIVEN a ventilator whose SendMessageBatch calls are counted
    calls = count_send_calls(handlers.api)

    # WHEN a client submits 105 subtasks by count and seed
    response = handlers.post({"count": 105, "seed": 42, "fail_indexes": [3], "work_ms": 5})

    # THEN 11 calls carried them (10 full batches and one of 5)
    assert response.status == 202
    assert sorted(calls) == [5] + [10] * 10
    # AND every index was sent exactly once with its deterministic value
    job_id = response.body["job_id"]
    bodies = sorted(queued_bodies(infra), key=lambda body: body["index"])
    seeded_value = handlers.models.seeded_value
    expected = [
        {
            "job_id": job_id,
            "index": index,
            "value": seeded_value(42, index),
            "work_ms": 5,
            **({"fail": True} if index == 3 else {}),
        }
        for index in range(105)
    ]
    assert bodies == expected
    assert infra.job(job_id)["request"] == {
        "source": "count",
        "seed": 42,
        "fail_indexes": [3],
        "work_ms": 5,
    }


def test_seeded_values_are_the_documented_derivation(handlers):
    # GIVEN the documented derivation, sha256("<seed>:<index>")[:4] mod 1000
    # WHEN it is computed  THEN it gives these values (clients check aggregates with them)
    seeded_value = handlers.models.seeded_value
    assert [seeded_value(0, i) for i in range(5)] == [218, 74, 676, 486, 497]
    assert [seeded_value(42, i) for i in range(3)] == [650, 673, 167]


class InMemoryQueue:
    """A SubtaskQueue stand-in that keeps bodies in memory (moto is slow at 10,000)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[str] = []
        self.calls = 0

    def send_batch(self, entries: list[tuple[str, str]]) -> list[str]:
        assert len(entries) <= 10
        with self.lock:
            self.calls += 1
            self.bodies += [body for _, body in entries]
        return []


def test_ten_thousand_subtasks_are_ventilated_in_a_thousand_parallel_calls(handlers):
    # GIVEN the largest job allowed, as a list of items
    request = handlers.models.parse_job_request(json.dumps({"items": list(range(10_000))}).encode())
    queue = InMemoryQueue()

    # WHEN it is ventilated with 16 parallel senders
    report = handlers.service.ventilate(
        queue, handlers.service.subtask_messages(str(uuid.uuid4()), request), concurrency=16
    )

    # THEN 1,000 calls sent every index once
    assert (report.sent, report.unsent, report.calls, queue.calls) == (10_000, [], 1_000, 1_000)
    assert sorted(json.loads(body)["index"] for body in queue.bodies) == list(range(10_000))


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


def test_invalid_base64_body_is_a_json_400(handlers, infra, events):
    # GIVEN a base64-flagged body that does not decode
    event = events.post_jobs("@@@not base64@@@")
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


# --------------------------------------------------------------------------- ventilation failures


class FlakySqs:
    """An SQS client that reports chosen entries as failed on their first send(s).

    Entries it does not fail go to the real (moto) client, so the queue shows what
    SQS would hold.
    """

    def __init__(self, real: Any, *, fail_ids: set[str], times: int) -> None:
        self.real = real
        self.meta = real.meta
        self.fail_ids = fail_ids
        self.remaining_failures = {entry_id: times for entry_id in fail_ids}
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append([entry["Id"] for entry in Entries])
        failed, passed = [], []
        for entry in Entries:
            if self.remaining_failures.get(entry["Id"], 0) > 0:
                self.remaining_failures[entry["Id"]] -= 1
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                passed.append(entry)
        response: dict[str, Any] = {"Successful": [], "Failed": failed}
        if passed:
            real = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=passed)
            response["Successful"] = real["Successful"]
        return response


def test_entries_a_batch_call_reports_failed_are_retried(handlers, infra, monkeypatch):
    # GIVEN SQS fails entries 3 and 17 of the first calls twice each
    flaky = FlakySqs(handlers.api.queue._client, fail_ids={"3", "17"}, times=2)
    monkeypatch.setattr(handlers.api.queue, "_client", flaky)

    # WHEN a job of 25 subtasks is submitted
    response = handlers.post({"count": 25})

    # THEN only the failed entries were resent, with backoff, and the job is accepted
    assert response.status == 202
    retries = [
        ids for ids in flaky.calls if len(ids) < 10 and ids != ["20", "21", "22", "23", "24"]
    ]
    assert sorted(map(sorted, retries)) == [["17"], ["17"], ["3"], ["3"]]
    assert len(handlers.sleep.calls) == 4
    # AND every subtask is queued exactly once
    assert sorted(body["index"] for body in queued_bodies(infra)) == list(range(25))
    assert infra.job(response.body["job_id"])["status"] == "RUNNING"


def test_entries_that_never_send_fail_the_job_with_503(handlers, infra, monkeypatch):
    # GIVEN SQS fails entry 4 on every attempt
    flaky = FlakySqs(handlers.api.queue._client, fail_ids={"4"}, times=100)
    monkeypatch.setattr(handlers.api.queue, "_client", flaky)

    # WHEN a job of 12 subtasks is submitted
    response = handlers.post({"count": 12})

    # THEN the client gets 503 with Retry-After, and the job is FAILED, not RUNNING
    assert_json_error(response, 503, "service_unavailable")
    assert response.headers["retry-after"] == "2"
    (job,) = infra.jobs()
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "ventilation_failed"
    # AND the subtasks that did go out are refused by the workers (nothing counted)
    handlers.run_to_completion()
    assert infra.results() == []
    assert infra.job(job["job_id"])["remaining"] == 12


def test_whole_call_errors_are_retried_like_failed_entries(handlers, infra, monkeypatch):
    # GIVEN SendMessageBatch raises once (e.g. after the SDK's own retries)
    real = handlers.api.queue._client
    raised: list[int] = []

    class RaisingOnce:
        meta = real.meta

        def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            if not raised:
                raised.append(1)
                raise ClientError(
                    {"Error": {"Code": "InternalError", "Message": "boom"}}, "SendMessageBatch"
                )
            return real.send_message_batch(**kwargs)

    monkeypatch.setattr(handlers.api.queue, "_client", RaisingOnce())

    # WHEN a job of 10 subtasks is submitted
    response = handlers.post({"count": 10})

    # THEN the chunk is resent and the job accepted
    assert response.status == 202
    assert sorted(body["index"] for body in queued_bodies(infra)) == list(range(10))


def test_ventilation_stops_before_the_function_timeout(handlers, infra, events):
    # GIVEN an invocation with less time left than the safety margin
    # WHEN a job is submitted
    response = handlers.call_api(events.post_jobs({"count": 30}), remaining_ms=2_000)

    # THEN nothing is sent, and the job is FAILED instead of left RUNNING
    assert_json_error(response, 503, "service_unavailable")
    assert infra.queue_depth() == 0
    assert infra.jobs()[0]["status"] == "FAILED"


# --------------------------------------------------------------------------- GET


def test_get_reports_progress_with_202_while_running(handlers):
    # GIVEN a job of 3 subtasks, one of them processed
    job_id = handlers.post({"items": [1, 2, 3]}).body["job_id"]
    records = handlers.infra.receive_records(limit=1)
    handlers.run_worker({"Records": records})

    # WHEN the client polls
    response = handlers.get(job_id)

    # THEN it sees 202 with the counts and Retry-After, and no aggregate yet
    assert response.status == 202
    assert response.headers["retry-after"] == "2"
    assert response.headers["cache-control"] == "no-store"
    body = response.body
    assert (body["status"], body["total"], body["done"], body["failed"], body["remaining"]) == (
        "RUNNING",
        3,
        1,
        0,
        2,
    )
    assert "aggregate" not in body


def test_get_unknown_job_is_404(handlers):
    assert_json_error(handlers.get(str(uuid.uuid4())), 404, "not_found")


def test_get_with_malformed_id_is_400(handlers):
    assert_json_error(handlers.get("not-a-uuid"), 400, "invalid_request")


def test_unknown_route_is_json_404(handlers, events):
    event = events.post_jobs({"count": 1})
    event["path"] = event["resource"] = "/other"
    assert_json_error(handlers.call_api(event), 404, "not_found")


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


@pytest.mark.parametrize("key", ["", "x" * 129, "tab\there"], ids=["empty", "too-long", "tab"])
def test_a_bad_idempotency_key_is_400_and_nothing_is_written(handlers, infra, key):
    # GIVEN a valid job with an invalid key WHEN it is submitted
    response = handlers.post({"items": [1]}, headers={"Idempotency-Key": key})

    # THEN 400 naming the header, nothing written or sent
    assert_json_error(response, 400, "invalid_request")
    assert "Idempotency-Key" in response.body["message"]
    assert_nothing_written(infra)
