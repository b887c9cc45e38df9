"""Jobs and results past their TTL read as absent, although DynamoDB has not deleted them.

DynamoDB deletes expired items typically within two days and reads return them until
then (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
moto never deletes them, so items past their ``expires_at`` on the fake clock are what
AWS shows within that delay.
"""

from __future__ import annotations

from typing import Any

from tests.support.events import assert_json_error

KEY = {"Idempotency-Key": "batch-ttl"}


def _to_expiry(handlers: Any, infra: Any, job_id: str) -> None:
    """Move the fake clock to the job's ``expires_at`` (expired from that second on)."""
    handlers.clock.advance_to(int(infra.job(job_id)["expires_at"]))


def test_get_of_a_job_past_its_ttl_answers_404(handlers, infra):
    # GIVEN a finished job, at its expires_at, its item still in the table
    job_id = handlers.post({"items": [3]}).body["job_id"]
    handlers.run_to_completion()
    _to_expiry(handlers, infra, job_id)
    assert infra.job(job_id)["status"] == "DONE"

    # WHEN the client polls it
    response = handlers.get(job_id)

    # THEN 404, as after the deletion
    assert_json_error(response, 404, "not_found")


def test_a_key_reused_after_its_job_expired_runs_a_new_job_to_its_own_aggregate(handlers, infra):
    # GIVEN a keyed job of five subtasks, DONE, and now past its TTL: its job item
    # and its five results are all still in the tables
    old = handlers.post({"items": [2, 3, 4, 5, 6]}, headers=KEY)
    job_id = old.body["job_id"]
    handlers.run_to_completion()
    _to_expiry(handlers, infra, job_id)
    assert len(infra.results(job_id)) == 5

    # WHEN the client submits two subtasks with the same key
    new = handlers.post({"items": [7, 8]}, headers=KEY)
    handlers.run_to_completion()

    # THEN a new job was created under the same id (not the old DONE replayed)
    assert new.status == 202, new.body
    assert new.body["job_id"] == job_id
    assert new.body["status"] == "RUNNING"
    # AND each subtask was counted although an expired result of the old job had its
    # index (not taken for a duplicate), and the reducer aggregated only the new
    # job's two results, not the old job's expired ones at indexes 2 to 4
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("DONE", 0, 2)
    assert job["aggregate"] == {
        "count": 2,
        "sum": 49 + 64,
        "min": 49,
        "max": 64,
        "failed": 0,
        "failed_subtasks": [],
    }


def test_no_result_outlives_its_job(handlers, infra):
    # GIVEN a job whose subtasks are recorded in the last second before its deadline
    job_id = handlers.post({"items": [1, 2]}).body["job_id"]
    job = infra.job(job_id)
    handlers.clock.advance_to(job["deadline_epoch"] - 1)

    # WHEN the worker records them
    handlers.poll_queue()

    # THEN every result expires no later than the job: when the job has expired and
    # its id is used anew, no live result of it can pass for one of the new job's
    results = infra.results(job_id)
    assert len(results) == 2
    assert max(result["expires_at"] for result in results) <= job["expires_at"]
