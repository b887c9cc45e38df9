"""Worker and reducer: failed subtasks and reducer triggers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from patterns.fan_out_fan_in.scenarios import expected_aggregate
from tests.support import handlers as handler_modules
from tests.support.aws_faults import (
    attempts_stall,
    backoff_before_2026,
    calls_take,
    recorded_logs,
)
from tests.support.events import dynamodb_stream_event, dynamodb_stream_record, sqs_event
from tests.support.fakes import FakeLambdaContext
from tests.unit.fan_out_fan_in.conftest import (
    MAX_RECEIVE_COUNT,
    REDUCER_FILTER,
    RESULT_TABLE,
    matches_filter,
    sqs_record,
)
from tests.unit.fan_out_fan_in.flow_helpers import failed_ids, submit

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


def test_failure_before_the_last_receive_is_retried_not_counted(handlers, infra):
    # GIVEN a failing subtask on its first receive
    job_id = submit(handlers, {"items": [1], "fail_indexes": [0]})
    (record,) = infra.receive_records()

    # WHEN the worker runs it
    response = handlers.run_worker(sqs_event(record))

    # THEN the record is reported failed and nothing is counted yet
    assert failed_ids(response) == [record["messageId"]]
    assert infra.job(job_id)["remaining"] == 1
    assert infra.results(job_id) == []


def test_duplicate_of_a_counted_failure_does_not_count_again(handlers, infra):
    # GIVEN a failure counted on its last receive
    job_id = submit(handlers, {"items": [1, 2], "fail_indexes": [0]})
    body = json.dumps({"job_id": job_id, "index": 0, "value": 1, "fail": True})
    last = sqs_record(body, receive_count=MAX_RECEIVE_COUNT)
    first = handlers.run_worker(sqs_event(last))

    # WHEN a duplicate copy reaches its last receive too
    again = handlers.run_worker(sqs_event(sqs_record(body, receive_count=5)))

    # THEN both are reported (both go to the DLQ) but the failure counts once
    assert len(failed_ids(first)) == len(failed_ids(again)) == 1
    job = infra.job(job_id)
    assert (job["remaining"], job["failed"]) == (1, 1)


def test_malformed_message_fails_alone_and_writes_nothing(handlers, infra):
    # GIVEN a batch with a malformed message between two good ones
    job_id = submit(handlers, {"items": [1, 2]})
    good = infra.receive_records()
    poison = sqs_record('{"job_id": "nope", "index": 0}')

    # WHEN the worker processes the batch
    response = handlers.run_worker(sqs_event(good[0], poison, good[1]))

    # THEN only the poison message is reported; the good ones are counted
    assert failed_ids(response) == [poison["messageId"]]
    assert infra.job(job_id)["remaining"] == 0
    assert len(infra.results()) == 2


@pytest.mark.parametrize(
    "body",
    ["", "[]", "{}", '{"job_id": 5, "index": 0, "value": 1}', '{"index": 0, "value": 1}'],
)
def test_invalid_subtask_messages_are_batch_item_failures(handlers, infra, body):
    record = sqs_record(body)
    response = handlers.run_worker(sqs_event(record))
    assert failed_ids(response) == [record["messageId"]]
    assert infra.results() == []


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


def test_reducer_trigger_for_an_unfinished_job_changes_nothing(handlers, infra):
    # GIVEN a job with subtasks outstanding and a (stale or forged) trigger for it
    job_id = submit(handlers, {"items": [1, 2]})
    before = infra.job(job_id)
    record = dynamodb_stream_record(keys={"job_id": job_id}, new_image=before)

    # WHEN the reducer gets it
    response = handlers.run_reducer(dynamodb_stream_event(record))

    # THEN it succeeds without touching the job
    assert response == {"batchItemFailures": []}
    assert infra.job(job_id) == before


def test_trigger_for_a_missing_job_is_consumed(handlers):
    record = dynamodb_stream_record(keys={"job_id": "0b0e7c4f-7d2c-4d8e-9a51-2d7c0b4a9e63"})
    assert handlers.run_reducer(dynamodb_stream_event(record)) == {"batchItemFailures": []}


def test_malformed_trigger_is_a_batch_item_failure(handlers):
    record = dynamodb_stream_record(keys={"pk": "x"})
    response = handlers.run_reducer(dynamodb_stream_event(record))
    assert failed_ids(response) == [record["dynamodb"]["SequenceNumber"]]


def test_a_reduction_missing_a_result_fails_its_record_and_finishes_nothing(handlers, infra):
    # GIVEN a job of three subtasks, all counted (remaining 0), of whose results only two
    # can be read: one is gone from the result table
    job_id = submit(handlers, {"items": [1, 2, 3]})
    handlers.poll_queue()
    infra.dynamodb.delete_item(
        TableName=RESULT_TABLE, Key={"job_id": {"S": job_id}, "subtask": {"N": "1"}}
    )
    job = infra.job(job_id)
    assert (job["remaining"], job["total"], len(infra.results(job_id))) == (0, 3, 2)
    [trigger] = [r for r in infra.stream_records() if matches_filter(REDUCER_FILTER, r)]

    # WHEN the reducer gets the job's trigger
    with recorded_logs(handlers.reducer.logger) as logs:
        response = handlers.run_reducer(dynamodb_stream_event(trigger))

    # THEN the record is reported failed (to be retried) for the missing result
    assert failed_ids(response) == [trigger["dynamodb"]["SequenceNumber"]]
    raised = [type(r.exc_info[1]) for r in logs if r.exc_info]
    assert raised == [handlers.models.ResultsIncompleteError]
    # AND the job is neither finished nor aggregated
    job = infra.job(job_id)
    assert job["status"] == "REDUCING" and "aggregate" not in job


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


def test_subtasks_with_no_time_left_are_handed_back_uncounted_and_none_is_lost(handlers, infra):
    """A function that times out fails its whole batch ("If your function throws an
    exception, the entire batch is considered a complete failure",
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): each
    message would use up a receive, and the subtasks already counted would run again."""
    # GIVEN a batch of ten subtasks of 1 s each, and an invocation with 9 s left
    job_id = submit(handlers, {"items": list(range(10)), "work_ms": 1_000})
    records = infra.receive_records()
    assert len(records) == 10
    context = FakeLambdaContext(
        function_name="FanOutWorker", remaining_ms=9_000, clock=handlers.clock
    )
    started = handlers.clock()

    # WHEN the worker runs it
    response = handlers.worker.handler(sqs_event(*records), context)

    # THEN it ends in time: the subtasks that fit (1 s of work and 5 s besides, each)
    # are counted, the others handed back untouched, to run on a later receive
    assert (handlers.clock() - started).total_seconds() <= 9
    handed_back = failed_ids(response)
    job = infra.job(job_id)
    assert len(handed_back) == 6 and job["remaining"] == 6 and job["done"] == 4
    assert len(infra.results(job_id)) == 4
    # AND the job still completes once the queue gives them to the worker again
    handler_modules.settle_batch(infra.sqs, infra.queue_url, records, response)
    handlers.run_to_completion()
    job = infra.job(job_id)
    assert (job["status"], job["done"]) == ("DONE", 10)


#: A DynamoDB or SQS round trip on the fake clock (each attempt of a call).
ROUND_TRIP_S = 0.01


@pytest.mark.parametrize("old_backoff", [False, True], ids=["backoff-now", "backoff-before-2026"])
def test_a_subtask_started_with_only_its_budget_left_survives_a_stalled_attempt(
    handlers, infra, old_backoff
):
    # GIVEN a subtask of 1 s, and an invocation with just the time the worker asks to
    # start one: its work and its overhead
    job_id = submit(handlers, {"items": [1], "work_ms": 1_000})
    (record,) = infra.receive_records()
    budget_ms = 1_000 + handlers.worker.fan_out_models.SUBTASK_OVERHEAD_MS
    context = FakeLambdaContext(
        function_name="FanOutWorker", remaining_ms=budget_ms, clock=handlers.clock
    )
    started = handlers.clock()

    # WHEN the first attempt of its transaction stalls until the client's own timeouts
    # give up on it, and botocore retries it
    client = handlers.worker.store._client
    with (
        backoff_before_2026(old_backoff),
        calls_take(client, handlers.clock.advance, ROUND_TRIP_S),
        attempts_stall(client, "TransactWriteItems", handlers.clock.advance) as waited,
    ):
        response = handlers.worker.handler(sqs_event(record), context)

    # THEN it is counted and the invocation ended in time (a timeout fails the batch)
    assert waited and response == {"batchItemFailures": []}
    assert (handlers.clock() - started).total_seconds() * 1000 <= budget_ms
    assert infra.job(job_id)["done"] == 1


def test_the_aggregate_counts_every_failure_but_lists_only_the_first_hundred(handlers):
    # GIVEN the results of a job of 103 subtasks of which all but two failed
    results: list[dict[str, Any]] = [
        {"subtask": index, "outcome": "failed"} for index in range(101)
    ]
    results += [{"subtask": 101, "outcome": "ok", "result": 9}]
    results += [{"subtask": 102, "outcome": "ok", "result": 4}]

    # WHEN they are aggregated
    aggregate = handlers.gather.aggregate_results(results)

    # THEN every failure is counted, only the first 100 indexes are listed, and the
    # successes are summed with their smallest and largest
    assert aggregate == {
        "count": 2,
        "sum": 13,
        "min": 4,
        "max": 9,
        "failed": 101,
        "failed_subtasks": list(range(100)),
    }
