"""Worker and reducer: contention on the job item."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from patterns.fan_out_fan_in.scenarios import expected_aggregate
from tests.support.events import sqs_event
from tests.unit.fan_out_fan_in.flow_helpers import failed_ids, submit

# --------------------------------------------------------------------------- contention


class ConflictingDynamoDB:
    """Cancels the first ``times`` transactions on the job item for ``reason``."""

    def __init__(self, real: Any, times: int, reason: str = "TransactionConflict") -> None:
        self.real = real
        self.times = times
        self.reason = reason

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.times > 0:
            self.times -= 1
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": self.reason}],
                },
                "TransactWriteItems",
            )
        return self.real.transact_write_items(**kwargs)


@pytest.mark.parametrize(
    "reason", ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"]
)
def test_a_transient_cancellation_is_retried_in_place(handlers, infra, monkeypatch, reason):
    # GIVEN the job item is contended (or throttled) for the first two attempts: on the
    # last receive, a message handed back for it would reach the DLQ uncounted
    job_id = submit(handlers, {"items": [9]})
    store = handlers.worker.store
    monkeypatch.setattr(store, "_client", ConflictingDynamoDB(store._client, 2, reason))

    # WHEN the worker processes the subtask
    handlers.run_to_completion()

    # THEN it retried with backoff and counted the subtask once
    assert len(handlers.sleep.calls) == 2
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("DONE", 0, 1)


def test_lasting_conflict_fails_the_record_and_writes_nothing(handlers, infra, monkeypatch):
    # GIVEN the job item stays contended
    job_id = submit(handlers, {"items": [9]})
    store = handlers.worker.store
    monkeypatch.setattr(store, "_client", ConflictingDynamoDB(store._client, times=100))
    (record,) = infra.receive_records()

    # WHEN the worker processes the subtask
    response = handlers.run_worker(sqs_event(record))

    # THEN the record is retried later, and nothing was counted
    assert failed_ids(response) == [record["messageId"]]
    assert infra.job(job_id)["remaining"] == 1
    assert infra.results() == []


def test_direct_trigger_and_stream_trigger_reduce_once(handlers, infra):
    # GIVEN a job whose counter reached 0
    job_id = submit(handlers, {"items": [1, 2, 3]})
    handlers.poll_queue()

    # WHEN something other than the stream (a worker that saw 0, an operator) reduces it
    # first, and the stream record arrives afterwards
    direct = handlers.gather.reduce_job(handlers.reducer.store, job_id, now=handlers.clock)
    streamed = handlers.pump_stream()

    # THEN the job was finished by the first trigger only
    assert direct is handlers.models.ReduceOutcome.DONE
    assert len(streamed) == 1
    job = infra.job(job_id)
    assert (job["status"], job["reductions"]) == ("DONE", 1)
    assert job["aggregate"] == expected_aggregate([1, 2, 3])


def test_reduction_claimed_but_not_finished_by_the_deadline_times_out(handlers, infra):
    # GIVEN a reducer that claimed the job and died
    job_id = submit(handlers, {"items": [5]})
    handlers.poll_queue()
    store = handlers.reducer.store
    assert store.claim_reduction(job_id, handlers.clock()) is not None

    # WHEN the deadline passes and the retried trigger arrives
    handlers.clock.advance(900)
    handlers.pump_stream()

    # THEN the job is TIMED_OUT, not finished late
    job = infra.job(job_id)
    assert (job["status"], job["error"]["code"]) == ("TIMED_OUT", "timed_out")
    assert "aggregate" not in job


def test_get_shows_a_failed_ventilation(handlers, infra):
    # GIVEN a job whose ventilation failed
    job_id = submit(handlers, {"items": [1]})
    assert handlers.api.store.mark_ventilation_failed(job_id, unsent=1, now=handlers.clock())

    # WHEN the client polls  THEN it sees FAILED with the reason
    response = handlers.get(job_id)
    assert (response.status, response.body["status"]) == (200, "FAILED")
    assert response.body["error"]["code"] == "ventilation_failed"


def test_job_whose_every_subtask_fails_ends_failed_with_an_empty_aggregate(handlers, infra):
    # GIVEN a job of two subtasks that both fail on every delivery
    job_id = submit(handlers, {"items": [1, 2], "fail_indexes": [0, 1]})

    # WHEN the queue is drained
    handlers.run_to_completion()

    # THEN both failures are counted and the job is FAILED with nothing aggregated
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"], job["failed"]) == ("FAILED", 0, 0, 2)
    assert job["aggregate"] == expected_aggregate([1, 2], failed=[0, 1])
    assert sorted(body["index"] for body in infra.dlq_bodies()) == [0, 1]
