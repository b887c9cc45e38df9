"""Worker and reducer: whole jobs through moto's queue and the job table's real stream.

``handlers.run_to_completion`` plays both event source mappings: it polls the subtask
queue in batches of 10 (the worker's partial batch response decides what is deleted)
and passes new stream records through the reducer's filter to the reducer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError


def submit(handlers: Any, body: dict[str, Any]) -> str:
    response = handlers.post(body)
    assert response.status == 202, response.body
    return str(response.body["job_id"])


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def expected_aggregate(
    values: list[int], failed: tuple[int, ...] | list[int] = ()
) -> dict[str, Any]:
    squares = [v * v for i, v in enumerate(values) if i not in failed]
    return {
        "count": len(squares),
        "sum": sum(squares),
        "min": min(squares) if squares else None,
        "max": max(squares) if squares else None,
        "failed": len(failed),
        "failed_subtasks": sorted(failed),
    }


# --------------------------------------------------------------------------- happy paths


def test_single_subtask_job_ends_done_with_its_aggregate(handlers, infra):
    # GIVEN a job of one item
    job_id = submit(handlers, {"items": [-12]})

    # WHEN the worker and the reducer have run
    handlers.run_to_completion()

    # THEN the job is DONE with remaining exactly 0 and the aggregate of the one result
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"], job["failed"]) == ("DONE", 0, 1, 0)
    assert job["aggregate"] == expected_aggregate([-12])
    assert job["reductions"] == 1
    # AND the client gets 200 with the aggregate
    response = handlers.get(job_id)
    assert response.status == 200
    assert response.body["aggregate"]["sum"] == 144
    assert infra.queue_depth() == 0


def test_sixty_subtasks_are_counted_once_each_and_aggregated(handlers, infra):
    # GIVEN a job of 60 seeded subtasks (larger N runs in the e2e suite and `make bench`)
    job_id = submit(handlers, {"count": 60, "seed": 11})
    values = [handlers.models.seeded_value(11, i) for i in range(60)]

    # WHEN every subtask has been processed (6 batches) and the reducer has run
    handlers.run_to_completion()

    # THEN the counter is exactly 0, every result stored once, and the aggregate right
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("DONE", 0, 60)
    assert [r["subtask"] for r in infra.results(job_id)] == list(range(60))
    assert job["aggregate"] == expected_aggregate(values)


def test_reducer_pages_through_results(handlers, infra, monkeypatch):
    # GIVEN a finished job whose results need several Query pages (page size 7)
    job_id = submit(handlers, {"items": list(range(1, 31))})
    real_query = handlers.reducer.store._client.query
    pages: list[int] = []

    def small_pages(**kwargs: Any) -> dict[str, Any]:
        page = real_query(**{**kwargs, "Limit": 7})
        pages.append(len(page["Items"]))
        return page

    monkeypatch.setattr(handlers.reducer.store._client, "query", small_pages)

    # WHEN the reducer runs
    handlers.run_to_completion()

    # THEN it read every page and the aggregate covers all 30 results
    assert sum(pages) == 30 and len(pages) >= 5
    assert infra.job(job_id)["aggregate"] == expected_aggregate(list(range(1, 31)))


# --------------------------------------------------------------------------- duplicates


def test_every_message_delivered_twice_leaves_counter_and_aggregate_unchanged(handlers, infra):
    # GIVEN a job of 40 subtasks
    job_id = submit(handlers, {"count": 40, "seed": 5})
    values = [handlers.models.seeded_value(5, i) for i in range(40)]

    # WHEN every SQS batch and every stream record is delivered twice
    handlers.run_to_completion(duplicate=True)

    # THEN each subtask was counted once, and the job reduced once in effect
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"], job["failed"]) == ("DONE", 0, 40, 0)
    assert job["aggregate"] == expected_aggregate(values)
    assert job["reductions"] == 1
    assert len(infra.results(job_id)) == 40


def test_redelivery_after_the_job_is_done_changes_nothing(handlers, infra, events):
    # GIVEN a finished job and a copy of one of its messages
    job_id = submit(handlers, {"items": [3, 4]})
    (first, *_) = infra.receive_records()
    handlers.infra.sqs.change_message_visibility(
        QueueUrl=infra.queue_url, ReceiptHandle=first["receiptHandle"], VisibilityTimeout=0
    )
    handlers.run_to_completion()
    before = (infra.job(job_id), infra.results(job_id))

    # WHEN the copy is delivered late
    response = handlers.run_worker(events.sqs_event(first))

    # THEN it succeeds and nothing changed
    assert response == {"batchItemFailures": []}
    assert (infra.job(job_id), infra.results(job_id)) == before


# --------------------------------------------------------------------------- failures


def test_poison_subtask_is_counted_moves_to_dlq_and_the_job_ends_failed(handlers, infra):
    # GIVEN a job of 12 subtasks whose subtask 5 fails on every delivery
    job_id = submit(handlers, {"items": list(range(12)), "fail_indexes": [5]})

    # WHEN the queue is drained (the failing message is retried until maxReceiveCount)
    handlers.run_to_completion()

    # THEN the other 11 subtasks completed and the failure is counted once
    job = infra.job(job_id)
    assert (job["remaining"], job["done"], job["failed"]) == (0, 11, 1)
    # AND the job ends FAILED, listing the failed subtask, with the partial aggregate
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "subtasks_failed"
    assert job["aggregate"] == expected_aggregate(list(range(12)), failed=[5])
    failure = infra.results(job_id)[5]
    assert failure["outcome"] == "failed"
    assert failure["error"]["receives"] == 3
    # AND the message itself is in the DLQ for inspection
    assert [body["index"] for body in infra.dlq_bodies()] == [5]
    assert infra.queue_depth() == 0
    # AND the client sees the failure
    response = handlers.get(job_id)
    assert (response.status, response.body["status"], response.body["failed"]) == (
        200,
        "FAILED",
        1,
    )


def test_failure_before_the_last_receive_is_retried_not_counted(handlers, infra, events):
    # GIVEN a failing subtask on its first receive
    job_id = submit(handlers, {"items": [1], "fail_indexes": [0]})
    (record,) = infra.receive_records()

    # WHEN the worker runs it
    response = handlers.run_worker(events.sqs_event(record))

    # THEN the record is reported failed and nothing is counted yet
    assert failed_ids(response) == [record["messageId"]]
    assert infra.job(job_id)["remaining"] == 1
    assert infra.results(job_id) == []


def test_duplicate_of_a_counted_failure_does_not_count_again(handlers, infra, events):
    # GIVEN a failure counted on its last receive
    job_id = submit(handlers, {"items": [1, 2], "fail_indexes": [0]})
    body = json.dumps({"job_id": job_id, "index": 0, "value": 1, "fail": True})
    last = events.sqs_record(body, receive_count=events.max_receive_count)
    first = handlers.run_worker(events.sqs_event(last))

    # WHEN a duplicate copy reaches its last receive too
    again = handlers.run_worker(events.sqs_event(events.sqs_record(body, receive_count=5)))

    # THEN both are reported (both go to the DLQ) but the failure counts once
    assert len(failed_ids(first)) == len(failed_ids(again)) == 1
    job = infra.job(job_id)
    assert (job["remaining"], job["failed"]) == (1, 1)


def test_malformed_message_fails_alone_and_writes_nothing(handlers, infra, events):
    # GIVEN a batch with a malformed message between two good ones
    job_id = submit(handlers, {"items": [1, 2]})
    good = infra.receive_records()
    poison = events.sqs_record('{"job_id": "nope", "index": 0}')

    # WHEN the worker processes the batch
    response = handlers.run_worker(events.sqs_event(good[0], poison, good[1]))

    # THEN only the poison message is reported; the good ones are counted
    assert failed_ids(response) == [poison["messageId"]]
    assert infra.job(job_id)["remaining"] == 0
    assert len(infra.results()) == 2


@pytest.mark.parametrize(
    "body",
    ["", "[]", "{}", '{"job_id": 5, "index": 0, "value": 1}', '{"index": 0, "value": 1}'],
)
def test_invalid_subtask_messages_are_batch_item_failures(handlers, infra, events, body):
    record = events.sqs_record(body)
    response = handlers.run_worker(events.sqs_event(record))
    assert failed_ids(response) == [record["messageId"]]
    assert infra.results() == []


# --------------------------------------------------------------------------- TIMED_OUT


def test_job_not_finished_by_its_deadline_reports_and_becomes_timed_out(handlers, infra):
    # GIVEN a job of 15 subtasks of which one batch (10) was processed
    job_id = submit(handlers, {"count": 15})
    handlers.poll_queue()
    assert infra.job(job_id)["remaining"] == 5

    # WHEN its deadline passes
    handlers.clock.advance(900)

    # THEN the client sees TIMED_OUT at once (computed on read)
    response = handlers.get(job_id)
    assert (response.status, response.body["status"]) == (200, "TIMED_OUT")
    assert response.body["error"]["code"] == "timed_out"
    # AND the late subtasks are refused (not counted) and close the job
    handlers.run_to_completion()
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("TIMED_OUT", 5, 10)
    assert len(infra.results(job_id)) == 10
    assert "aggregate" not in job


# --------------------------------------------------------------------------- reducer triggers


def test_stream_filter_passes_only_the_update_that_reached_zero(handlers, infra):
    # GIVEN a job of 3 subtasks
    submit(handlers, {"items": [1, 2, 3]})
    infra.stream_records()  # the INSERT of the job

    # WHEN the subtasks are counted one by one
    passed = []
    for _ in range(3):
        records = infra.receive_records(limit=1)
        handlers.run_worker({"Records": records})
        passed.append(handlers.pump_stream())

    # THEN only the last decrement (remaining = 0, RUNNING) reached the reducer; the
    # reducer's own REDUCING and DONE updates did not trigger it again
    assert [len(batch) for batch in passed] == [0, 0, 1]
    assert handlers.pump_stream() == []


def test_reducer_trigger_for_an_unfinished_job_changes_nothing(handlers, infra, events):
    # GIVEN a job with subtasks outstanding and a (stale or forged) trigger for it
    job_id = submit(handlers, {"items": [1, 2]})
    before = infra.job(job_id)
    record = events.stream_record(keys={"job_id": job_id}, new_image=before)

    # WHEN the reducer gets it
    response = handlers.run_reducer(events.stream_event(record))

    # THEN it succeeds without touching the job
    assert response == {"batchItemFailures": []}
    assert infra.job(job_id) == before


def test_trigger_for_a_missing_job_is_consumed(handlers, events):
    record = events.stream_record(keys={"job_id": "0b0e7c4f-7d2c-4d8e-9a51-2d7c0b4a9e63"})
    assert handlers.run_reducer(events.stream_event(record)) == {"batchItemFailures": []}


def test_malformed_trigger_is_a_batch_item_failure(handlers, events):
    record = events.stream_record(keys={"pk": "x"})
    response = handlers.run_reducer(events.stream_event(record))
    assert failed_ids(response) == [record["dynamodb"]["SequenceNumber"]]


def test_concurrent_reducers_finish_the_job_once(handlers, infra):
    # GIVEN a job whose counter reached 0 (its stream record not yet delivered)
    job_id = submit(handlers, {"items": [2, 3]})
    handlers.poll_queue()
    store = handlers.reducer.store
    outcomes: list[Any] = []

    class InterleavedStore(handlers.store.JobStore):
        """Runs a whole second reducer while the first is reading results."""

        def iter_results(self, job_id: str) -> Any:
            if not outcomes:
                outcomes.append(handlers.gather.reduce_job(store, job_id, now=handlers.clock))
            return super().iter_results(job_id)

    first = InterleavedStore(store._client, store._job_table, store._result_table)

    # WHEN two reducers run at once, the second finishing while the first aggregates
    outcome = handlers.gather.reduce_job(first, job_id, now=handlers.clock)

    # THEN the second finished the job and the first found it finished
    assert outcomes == [handlers.models.ReduceOutcome.DONE]
    assert outcome is handlers.models.ReduceOutcome.ALREADY_FINISHED
    job = infra.job(job_id)
    assert job["status"] == "DONE"
    assert job["aggregate"] == expected_aggregate([2, 3])
    # AND the stream record delivered afterwards changes nothing
    handlers.pump_stream()
    assert infra.job(job_id) == job


def test_reduction_interrupted_after_its_claim_is_completed_by_the_retry(handlers, infra):
    # GIVEN a reducer that claimed the job (REDUCING) and then crashed
    job_id = submit(handlers, {"items": [5]})
    handlers.poll_queue()
    assert handlers.reducer.store.claim_reduction(job_id, handlers.clock()) is not None

    # WHEN the stream record is (re)delivered
    handlers.pump_stream()

    # THEN the retry completes the reduction
    job = infra.job(job_id)
    assert (job["status"], job["aggregate"]["sum"], job["reductions"]) == ("DONE", 25, 2)


# --------------------------------------------------------------------------- contention


class ConflictingDynamoDB:
    """Cancels the first ``times`` transactions with a TransactionConflict."""

    def __init__(self, real: Any, times: int) -> None:
        self.real = real
        self.times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.times > 0:
            self.times -= 1
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return self.real.transact_write_items(**kwargs)


def test_transaction_conflict_is_retried_in_place(handlers, infra, monkeypatch):
    # GIVEN the job item is contended for the first two attempts
    job_id = submit(handlers, {"items": [9]})
    store = handlers.worker.store
    monkeypatch.setattr(store, "_client", ConflictingDynamoDB(store._client, times=2))

    # WHEN the worker processes the subtask
    handlers.run_to_completion()

    # THEN it retried with backoff and counted the subtask once
    assert len(handlers.sleep.calls) == 2
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("DONE", 0, 1)


def test_lasting_conflict_fails_the_record_and_writes_nothing(handlers, infra, events, monkeypatch):
    # GIVEN the job item stays contended
    job_id = submit(handlers, {"items": [9]})
    store = handlers.worker.store
    monkeypatch.setattr(store, "_client", ConflictingDynamoDB(store._client, times=100))
    (record,) = infra.receive_records()

    # WHEN the worker processes the subtask
    response = handlers.run_worker(events.sqs_event(record))

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
