"""job_api.handler against moto: GET /jobs/{job_id}."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.events import assert_json_error
from tests.unit.decoupled_invocation.conftest import JOB_TIMEOUT_SECONDS, RETRY_AFTER_SECONDS, VALID

# --------------------------------------------------------------------------- GET


def test_get_pending_job_is_202_with_retry_after(handlers):
    # GIVEN a submitted job
    job_id = handlers.post(VALID).body["job_id"]

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it is still in progress: 202 with Retry-After
    assert response.status == 202
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
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


def test_get_past_deadline_reports_timed_out_and_marks_it_so(handlers, infra):
    # GIVEN a job nobody ran, and its deadline has passed
    job_id = handlers.post(VALID).body["job_id"]
    handlers.clock.advance(JOB_TIMEOUT_SECONDS)

    # WHEN the client polls it, twice
    response = handlers.get(job_id)
    again = handlers.get(job_id)

    # THEN it is finished as TIMED_OUT with an error, and stored so: the answer is final
    assert response.status == 200
    assert response.body["status"] == "TIMED_OUT"
    assert response.body["error"]["code"] == "timed_out"
    assert infra.item(job_id)["status"] == "TIMED_OUT"
    assert again.raw_body == response.raw_body


def test_a_finish_landing_after_a_get_answered_timed_out_is_refused(handlers, infra):
    """The SDK resends a write whose reply it did not get, with the same values: a
    finish stamped before the deadline can land after it. A GET that answered TIMED_OUT
    has stored it, so that late finish is refused and the answer stays final."""
    # GIVEN a 1 s job picked up 5 s before its deadline
    job_id = handlers.post({**VALID, "duration_ms": 1_000}).body["job_id"]
    handlers.clock.advance(JOB_TIMEOUT_SECONDS - 5)
    seen: dict[str, Any] = {}

    def finish_stalls_while_a_client_polls(params: dict[str, Any], **_: Any) -> None:
        if "#result = :payload" in params.get("UpdateExpression", "") and not seen:
            handlers.clock.advance(6)  # the first attempt stalled: 2 s past the deadline
            seen["poll"] = handlers.get(job_id)

    handlers.worker.store._client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem", finish_stalls_while_a_client_polls
    )

    # WHEN the worker's finish lands after that poll
    assert handlers.drain_queue() == {"batchItemFailures": []}

    # THEN the poll's TIMED_OUT is what stays: the finish was refused, no result kept
    assert seen["poll"].status == 200 and seen["poll"].body["status"] == "TIMED_OUT"
    after = handlers.get(job_id)
    assert after.status == 200 and after.raw_body == seen["poll"].raw_body
    assert "result" not in infra.item(job_id)


def test_get_one_second_before_deadline_is_still_in_progress(handlers):
    # GIVEN a job one second before its deadline
    job_id = handlers.post(VALID).body["job_id"]
    handlers.clock.advance(JOB_TIMEOUT_SECONDS - 1)

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN it is still PENDING
    assert response.status == 202
    assert response.body["status"] == "PENDING"


def test_a_job_read_past_its_deadline_reads_timed_out_with_its_time(handlers, infra):
    # GIVEN a stored job nobody ran, its deadline passed and TIMED_OUT not stored yet
    job_id = handlers.post(VALID).body["job_id"]
    handlers.clock.advance(JOB_TIMEOUT_SECONDS)

    # WHEN the client's view of the stored item is taken
    view = handlers.api.job_service.job_view(infra.item(job_id), handlers.clock.now)

    # THEN it reads TIMED_OUT, saying how long the job had
    message = f"the job did not finish within {JOB_TIMEOUT_SECONDS} seconds"
    assert (view.status, view.error) == ("TIMED_OUT", {"code": "timed_out", "message": message})


def test_get_stored_timed_out_job_is_200(handlers):
    # GIVEN a worker picked the job up after its deadline and stored TIMED_OUT
    job_id = handlers.post(VALID).body["job_id"]
    handlers.clock.advance(JOB_TIMEOUT_SECONDS + 5)
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
