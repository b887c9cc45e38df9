"""Jobs past their TTL read as absent, although DynamoDB has not deleted them yet.

DynamoDB deletes expired items typically within two days and reads return them until
then (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
moto never deletes them, so an item past its ``expires_at`` on the fake clock is what
AWS shows within that delay.
"""

from __future__ import annotations

import pytest
from handler_kit.dynamodb import to_attribute_values

from tests.support.events import assert_json_error, sqs_event
from tests.unit.decoupled_invocation.conftest import JOB_RETENTION_DAYS, task_record

VALID = {"task": "checksum", "input": "hello world", "duration_ms": 250}
KEY = {"Idempotency-Key": "order-ttl"}


def _expire(handlers, infra, job_id: str) -> int:
    """Move the fake clock to the job's ``expires_at`` (expired from that second on)."""
    expires_at = int(infra.item(job_id)["expires_at"])
    handlers.clock.advance_to(expires_at)
    return expires_at


def test_get_of_a_job_past_its_ttl_answers_404(handlers, infra):
    # GIVEN a finished job, still in the table one second before its TTL
    job_id = handlers.post(VALID).body["job_id"]
    handlers.drain_queue()
    expires_at = int(infra.item(job_id)["expires_at"])
    handlers.clock.advance_to(expires_at - 1)
    assert handlers.get(job_id).status == 200

    # WHEN it is polled at its expires_at, the item still present (TTL not yet run)
    handlers.clock.advance(1)
    response = handlers.get(job_id)

    # THEN the client gets 404, as after the deletion
    assert infra.item(job_id)["status"] == "DONE"
    assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "body", [VALID, {**VALID, "input": "new"}], ids=["same-body", "other-body"]
)
def test_post_with_a_key_whose_job_expired_creates_a_new_job(handlers, infra, body):
    # GIVEN a job submitted with an Idempotency-Key, DONE, and now past its TTL
    first = handlers.post(VALID, headers=KEY)
    job_id = first.body["job_id"]
    handlers.drain_queue()
    expires_at = _expire(handlers, infra, job_id)

    # WHEN the client uses the key again (same body, or another one)
    again = handlers.post(body, headers=KEY)

    # THEN a new job is created under the same id: not the old DONE replayed (same
    # body), nor 422 for a reused key (other body)
    assert again.status == 202, again.body
    assert again.body["job_id"] == job_id
    assert again.body["status"] == "PENDING"
    item = infra.item(job_id)
    assert item["status"] == "PENDING"
    assert item["request"]["input"] == body["input"]
    assert item["expires_at"] == expires_at + JOB_RETENTION_DAYS * 86_400
    # AND it is queued and runs to DONE again
    assert infra.queue_depth() == 1
    handlers.drain_queue()
    assert infra.item(job_id)["status"] == "DONE"
    assert handlers.sleep.calls == [0.25, 0.25]


def test_worker_does_not_run_a_job_past_its_ttl(handlers, infra):
    # GIVEN a PENDING job already past its TTL, but not past its deadline (retention
    # shorter than the job timeout), put directly into the table
    job_id = "6a2f8a5e-0c1b-4d4e-9f3a-1b2c3d4e5f60"
    item = handlers.service.new_job_item(
        job_id,
        handlers.models.JobRequest(**VALID),
        now=handlers.clock(),
        settings=handlers.models.JobSettings(),
    )
    item.update(expires_at=handlers.clock.epoch, deadline_epoch=handlers.clock.epoch + 300)
    infra.dynamodb.put_item(TableName=infra.table_name, Item=to_attribute_values(item))

    # WHEN a delivery of its task message arrives
    response = handlers.run_worker(sqs_event(task_record(job_id)))

    # THEN the message is consumed and the work never runs: the job is absent
    assert response == {"batchItemFailures": []}
    assert handlers.sleep.calls == []
    assert infra.item(job_id) == item
