"""job_worker.handler: SQS batches against moto, with a fake clock and no real sleeping."""

from __future__ import annotations

import io
import json
import math
import uuid

import pytest
from handler_kit.status_transitions import attempts_of, owned_by_request

from tests.support import handlers as handler_modules
from tests.support.aws_faults import (
    attempts_stall,
    backoff_before_2026,
    calls_take,
    first_reply_lost,
    recorded_logs,
)
from tests.support.events import sqs_event
from tests.support.fakes import START, FakeLambdaContext
from tests.unit.decoupled_invocation.conftest import (
    JOB_TIMEOUT_SECONDS,
    post_jobs_event,
    sqs_record,
    task_record,
)

SUCCEED = {"task": "checksum", "input": "hello world", "duration_ms": 250}


def submit(handlers, body=None, **kwargs) -> str:
    response = handlers.post(body or SUCCEED, **kwargs)
    assert response.status == 202, response.body
    return response.body["job_id"]


def failed_ids(response) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_worker_runs_job_to_done_and_consumes_message(handlers, infra):
    # GIVEN a submitted job
    job_id = submit(handlers)

    # WHEN the worker receives its message
    response = handlers.drain_queue()

    # THEN the batch succeeds and the message is gone
    assert response == {"batchItemFailures": []}
    assert infra.queue_depth() == 0
    # AND the job is DONE with the deterministic result; the lease is released
    item = infra.item(job_id)
    assert item["status"] == "DONE"
    assert item["result"] == {
        "sha256": "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        "length": 11,
        "task": "checksum",
    }
    assert attempts_of(item) == 1
    assert "lease_owner" not in item and "lease_expires_epoch" not in item
    assert "error" not in item
    # AND the simulated work "took" duration_ms (on the fake clock)
    assert handlers.sleep.calls == [0.25]


def _outcomes(logs) -> list[str]:
    return [r.outcome for r in logs if r.getMessage() == "message processed"]


@pytest.mark.parametrize(
    "write", ["SET #status = :running", "#result = :payload"], ids=["claim", "finish"]
)
def test_a_write_whose_reply_was_lost_is_the_worker_s_own(handlers, infra, write):
    # GIVEN a submitted job, and DynamoDB applying the worker's claim, or its move to
    # DONE, but losing the reply, so the SDK sends the same request again and that
    # retry meets the write it repeats
    job_id = submit(handlers)
    worker = handlers.roles["worker"]

    # WHEN the worker receives its message
    with (
        first_reply_lost(
            worker.store._client, "UpdateItem", lambda params: write in params["UpdateExpression"]
        ) as lost,
        recorded_logs(worker.logger) as logs,
    ):
        response = handlers.drain_queue()

    # THEN the worker took the write for its own (the owner is unique per call): the job
    # ran once, is DONE, the message is gone and the outcome is "completed" (read as
    # another delivery's live lease, the message went back to the queue and the job
    # stayed RUNNING until the lease expired; a finish read as lost was "discarded")
    assert lost
    assert response == {"batchItemFailures": []}
    assert _outcomes(logs) == ["completed"]
    item = infra.item(job_id)
    assert item["status"] == "DONE" and "lease_owner" not in item
    assert handlers.sleep.calls == [0.25]
    # AND the SDK's retry of a claim is not counted as a second attempt
    assert attempts_of(item) == 1


def test_business_failure_is_recorded_and_message_consumed(handlers, infra):
    # GIVEN a job whose work fails
    job_id = submit(handlers, {**SUCCEED, "outcome": "fail"})

    # WHEN the worker runs it
    response = handlers.drain_queue()

    # THEN the job is FAILED with job_failed, and the message is not retried
    assert response == {"batchItemFailures": []}
    assert infra.queue_depth() == 0
    item = infra.item(job_id)
    assert item["status"] == "FAILED"
    assert item["error"]["code"] == "job_failed"
    assert "result" not in item


def test_crash_is_reported_as_item_failure_and_job_stays_running(handlers, infra):
    # GIVEN a batch with a crashing job and a good one
    crash_id = submit(handlers, {**SUCCEED, "outcome": "crash"})
    good_id = submit(handlers)
    records = infra.receive_records()
    crash_message = next(r["messageId"] for r in records if crash_id in r["body"])

    # WHEN the worker processes the batch (30 s left in the invocation)
    response = handlers.run_worker(sqs_event(*records), remaining_ms=30_000)

    # THEN only the crashing message is reported, so only it is retried
    assert failed_ids(response) == [crash_message]
    assert infra.item(good_id)["status"] == "DONE"
    # AND the crashed job stays RUNNING under the crashed delivery's lease
    crashed = infra.item(crash_id)
    assert crashed["status"] == "RUNNING"
    assert owned_by_request(crashed["lease_owner"], crash_message)
    assert crashed["lease_expires_epoch"] == math.ceil(START.timestamp() + 30)
    # AND once past its deadline the client sees TIMED_OUT
    handlers.clock.advance(JOB_TIMEOUT_SECONDS)
    poll = handlers.get(crash_id)
    assert (poll.status, poll.body["status"]) == (200, "TIMED_OUT")


def test_batch_where_every_record_fails_is_reported_not_raised(handlers, infra):
    # GIVEN a batch whose only job crashes
    submit(handlers, {**SUCCEED, "outcome": "crash"})

    # WHEN the worker processes it
    response = handlers.drain_queue()

    # THEN the record is listed as a failure (the same retry as a raise, minus a
    # function error)
    assert len(failed_ids(response)) == 1


def test_redelivered_crash_reclaims_after_lease_expiry_and_counts_attempts(handlers, infra):
    # GIVEN a job that crashed once
    job_id = submit(handlers, {**SUCCEED, "outcome": "crash"})
    handlers.drain_queue()

    # WHEN the message comes back after the visibility timeout (lease long expired)
    handlers.clock.advance(180)
    response = handlers.drain_queue()

    # THEN the job is claimed again, crashes again, and is reported again
    assert len(failed_ids(response)) == 1
    assert attempts_of(infra.item(job_id)) == 2


def test_duplicate_delivery_of_done_job_changes_nothing(handlers, infra):
    # GIVEN a job that already ran to DONE
    job_id = submit(handlers)
    handlers.drain_queue()
    before = infra.item(job_id)
    sleeps_before = list(handlers.sleep.calls)

    # WHEN its message is delivered again (SQS at-least-once)
    handlers.clock.advance(5)
    response = handlers.run_worker(sqs_event(task_record(job_id)))

    # THEN the delivery succeeds without redoing work or touching the item
    assert response == {"batchItemFailures": []}
    assert infra.item(job_id) == before
    assert handlers.sleep.calls == sleeps_before


def test_duplicate_delivery_of_failed_job_changes_nothing(handlers, infra):
    # GIVEN a job that already FAILED
    job_id = submit(handlers, {**SUCCEED, "outcome": "fail"})
    handlers.drain_queue()
    before = infra.item(job_id)

    # WHEN its message is delivered again
    response = handlers.run_worker(sqs_event(task_record(job_id)))

    # THEN nothing changes
    assert response == {"batchItemFailures": []}
    assert infra.item(job_id) == before


def test_poison_message_fails_alone_and_good_ones_complete(handlers, infra):
    # GIVEN a batch with a body that is not JSON between two good messages
    first, second = submit(handlers), submit(handlers, {**SUCCEED, "input": "other"})
    good = infra.receive_records()
    poison = sqs_record("this is not json")

    # WHEN the worker processes the batch
    response = handlers.run_worker(sqs_event(good[0], poison, good[1]))

    # THEN only the poison message is reported (it reaches the DLQ after its retries)
    assert failed_ids(response) == [poison["messageId"]]
    # AND the good jobs are DONE
    assert infra.item(first)["status"] == "DONE"
    assert infra.item(second)["status"] == "DONE"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param("[]", id="array"),
        pytest.param("{}", id="no-job-id"),
        pytest.param('{"job_id": 5}', id="job-id-number"),
        pytest.param('{"job_id": "not-a-uuid"}', id="job-id-not-uuid"),
    ],
)
def test_invalid_task_message_is_a_batch_item_failure(handlers, infra, body):
    # GIVEN a message whose body is not a task message
    record = sqs_record(body)

    # WHEN the worker gets it
    response = handlers.run_worker(sqs_event(record))

    # THEN it is reported as failed, and nothing was written
    assert failed_ids(response) == [record["messageId"]]
    assert infra.items() == []


def test_delivery_during_live_lease_fails_then_reclaims_after_expiry(handlers, infra):
    # GIVEN another delivery claimed the job and is still within its lease (it will
    # never finish: its invocation was killed)
    job_id = submit(handlers)
    [original] = infra.receive_records()
    store = handlers.worker.store
    lease_expires = handlers.clock.epoch + 30
    claimed = store.claim(
        job_id,
        lease_owner="other-delivery",
        lease_expires_epoch=lease_expires,
        now=handlers.clock(),
    )
    assert claimed is not None

    # WHEN a duplicate delivery arrives while the lease is live
    handlers.clock.advance(10)
    busy = handlers.run_worker(sqs_event(original))

    # THEN it is reported as failed (JobLeasedError) so SQS retries it later
    assert failed_ids(busy) == [original["messageId"]]
    assert infra.item(job_id)["lease_owner"] == "other-delivery"

    # WHEN it comes back after the lease expired
    handlers.clock.advance(60)
    retried = handlers.run_worker(sqs_event(original))

    # THEN it reclaims the job and completes it
    assert retried == {"batchItemFailures": []}
    item = infra.item(job_id)
    assert item["status"] == "DONE"
    assert attempts_of(item) == 2
    assert "lease_owner" not in item


def test_job_picked_up_past_deadline_is_timed_out_and_not_run(handlers, infra):
    # GIVEN a job whose message waited in the queue past the job's deadline
    job_id = submit(handlers)
    handlers.clock.advance(JOB_TIMEOUT_SECONDS + 1)

    # WHEN the worker finally gets it
    response = handlers.drain_queue()

    # THEN the message is consumed, the job is TIMED_OUT and the work never ran
    assert response == {"batchItemFailures": []}
    item = infra.item(job_id)
    assert item["status"] == "TIMED_OUT"
    assert item["error"]["code"] == "timed_out"
    assert attempts_of(item) == 0
    assert handlers.sleep.calls == []


def test_a_job_finishing_past_its_deadline_stays_the_timed_out_clients_were_told(handlers, infra):
    # GIVEN a 10-second job claimed one second before its deadline
    job_id = submit(handlers, {**SUCCEED, "duration_ms": 10_000})
    handlers.clock.advance(JOB_TIMEOUT_SECONDS - 1)
    seen = {}
    # (a client polls while the work runs past the deadline)
    handlers.sleep.during = lambda: seen.setdefault("during", handlers.get(job_id))

    # WHEN the worker runs it to the end
    assert handlers.drain_queue() == {"batchItemFailures": []}

    # THEN the client was answered TIMED_OUT, a final status, and that is what stays
    assert seen["during"].status == 200
    assert seen["during"].body["status"] == "TIMED_OUT"
    after = handlers.get(job_id)
    assert after.status == 200 and after.body["status"] == "TIMED_OUT"
    item = infra.item(job_id)
    assert item["status"] == "TIMED_OUT" and "result" not in item
    assert "lease_owner" not in item


def test_a_result_landing_past_the_deadline_unpolled_is_refused_and_times_out(
    handlers, infra, capsys
):
    # GIVEN a 10-second job claimed one second before its deadline, and no client polling
    # while its work runs past it (nothing marks it TIMED_OUT before the worker finishes)
    job_id = submit(handlers, {**SUCCEED, "duration_ms": 10_000})
    handlers.clock.advance(JOB_TIMEOUT_SECONDS - 1)
    capsys.readouterr()

    # WHEN the worker runs it to the end
    with recorded_logs(handlers.worker.logger) as logs:
        response = handlers.drain_queue()

    # THEN the work ran, but its late result is refused: the message is consumed and the
    # delivery closes the job as TIMED_OUT, counted as JobsTimedOut
    assert response == {"batchItemFailures": []}
    assert handlers.sleep.calls == [10.0]
    assert _outcomes(logs) == ["timed_out"]
    output = capsys.readouterr().out
    assert '"JobsTimedOut"' in output and '"JobsCompleted"' not in output
    # AND the item is TIMED_OUT with no result, its lease released
    item = infra.item(job_id)
    assert (item["status"], item["error"]["code"]) == ("TIMED_OUT", "timed_out")
    assert "result" not in item and "lease_owner" not in item
    # AND a later poll says TIMED_OUT
    after = handlers.get(job_id)
    assert (after.status, after.body["status"]) == (200, "TIMED_OUT")


def test_message_for_missing_job_is_consumed_without_writing(handlers, infra):
    # GIVEN a message for a job that does not exist (e.g. expired by TTL)
    record = task_record(str(uuid.uuid4()))

    # WHEN the worker gets it
    response = handlers.run_worker(sqs_event(record))

    # THEN it is consumed and no item is created
    assert response == {"batchItemFailures": []}
    assert infra.items() == []


def test_worker_logs_carry_the_api_request_id_as_correlation_id(handlers, infra):
    # GIVEN a job submitted through an API request with a known request id
    event = post_jobs_event(SUCCEED)
    request_id = event["requestContext"]["requestId"]
    job_id = handlers.call_api(event).body["job_id"]

    # WHEN the worker runs it, with its JSON log output captured
    stream = io.StringIO()
    log_handler = handlers.worker.logger.registered_handler
    previous = log_handler.setStream(stream)
    try:
        handlers.drain_queue()
    finally:
        log_handler.setStream(previous)

    # THEN the worker's structured logs for this job carry the API's correlation id
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line]
    processed = [line for line in lines if line.get("message") == "message processed"]
    assert len(processed) == 1
    assert processed[0]["correlation_id"] == request_id
    assert processed[0]["job_id"] == job_id
    assert processed[0]["outcome"] == "completed"


# --------------------------------------------------------------------------- batch timing

#: The deployed worker (tests/infra/test_decoupled_invocation.py asserts the template
#: has these): batches of 2, a 30 s timeout; jobs of up to 10 s (the API's limit).
DEPLOYED_BATCH_SIZE = 2
DEPLOYED_TIMEOUT_MS = 30_000
LONGEST_JOB = {**SUCCEED, "duration_ms": 10_000}


def run_batch_on_the_clock(handlers, records, *, timeout_ms: int) -> dict:
    """Run one batch with a context whose remaining time runs down with the fake clock
    (each job's simulated work advances it), as a real invocation's does."""
    context = FakeLambdaContext(
        function_name="JobWorker", remaining_ms=timeout_ms, clock=handlers.clock
    )
    return handlers.worker.handler(sqs_event(*records), context)


def test_a_full_batch_of_the_longest_jobs_ends_before_the_deployed_timeout(handlers, infra):
    """A function that times out fails its whole batch: with partial batch responses
    too, "If your function throws an exception, the entire batch is considered a
    complete failure" (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html),
    so a batch of the largest size must end in time even if every job is the longest."""
    # GIVEN a full batch of jobs that each take the longest work the API accepts
    job_ids = [submit(handlers, LONGEST_JOB) for _ in range(DEPLOYED_BATCH_SIZE)]
    records = infra.receive_records()
    assert len(records) == DEPLOYED_BATCH_SIZE
    started = handlers.clock()

    # WHEN the worker runs it under the deployed timeout
    response = run_batch_on_the_clock(handlers, records, timeout_ms=DEPLOYED_TIMEOUT_MS)

    # THEN every job is DONE, nothing is handed back, and the batch ended in time
    assert response == {"batchItemFailures": []}
    assert [infra.item(job_id)["status"] for job_id in job_ids] == ["DONE"] * len(job_ids)
    elapsed_ms = (handlers.clock() - started).total_seconds() * 1000
    assert elapsed_ms <= DEPLOYED_TIMEOUT_MS


#: A DynamoDB or SQS round trip on the fake clock (each attempt of a call).
ROUND_TRIP_S = 0.01


@pytest.mark.parametrize("old_backoff", [False, True], ids=["backoff-now", "backoff-before-2026"])
def test_a_full_batch_survives_a_stalled_attempt_in_every_job(handlers, infra, old_backoff):
    """The overhead a job is given (``JOB_OVERHEAD_MS``) covers one attempt that stalls
    for the worker client's connect and read timeouts and is retried: a batch of the
    longest jobs, each with such a stall, still ends before the deployed timeout."""
    # GIVEN a full batch of the longest jobs
    job_ids = [submit(handlers, LONGEST_JOB) for _ in range(DEPLOYED_BATCH_SIZE)]
    records = infra.receive_records()
    started = handlers.clock()

    # WHEN the first attempt of each job's finish (after its work: the worst place)
    # stalls until the client gives up on it, and botocore retries it
    client = handlers.worker.store._client

    def finish(params: dict) -> bool:
        return ":lease" not in params["ExpressionAttributeValues"]  # the claim sets one

    with (
        backoff_before_2026(old_backoff),
        calls_take(client, handlers.clock.advance, ROUND_TRIP_S),
        attempts_stall(client, "UpdateItem", handlers.clock.advance, finish) as waited,
    ):
        response = run_batch_on_the_clock(handlers, records, timeout_ms=DEPLOYED_TIMEOUT_MS)

    # THEN every job stalled, and every job is DONE within the timeout, none handed back
    assert len(waited) == 2 * DEPLOYED_BATCH_SIZE  # per job: a stall and a backoff
    assert response == {"batchItemFailures": []}
    assert [infra.item(job_id)["status"] for job_id in job_ids] == ["DONE"] * len(job_ids)
    elapsed_ms = (handlers.clock() - started).total_seconds() * 1000
    assert elapsed_ms <= DEPLOYED_TIMEOUT_MS


def test_jobs_with_no_time_left_are_handed_back_untouched_and_none_is_lost(handlers, infra):
    """Defence in depth if batch size and timeout are ever out of step: ten of the
    longest jobs in one 30 s invocation (the old sizing) would have run 100 s and timed
    out, failing the whole batch (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)."""
    # GIVEN a batch of ten of the longest jobs for a 30 s invocation
    job_ids = [submit(handlers, LONGEST_JOB) for _ in range(10)]
    records = infra.receive_records()
    message_of = {json.loads(r["body"])["job_id"]: r["messageId"] for r in records}
    started = handlers.clock()

    # WHEN the worker runs it
    response = run_batch_on_the_clock(handlers, records, timeout_ms=DEPLOYED_TIMEOUT_MS)

    # THEN no job ran past the invocation's end
    elapsed_ms = (handlers.clock() - started).total_seconds() * 1000
    assert elapsed_ms <= DEPLOYED_TIMEOUT_MS
    # AND every job is either DONE (its message consumed) or handed back untouched
    handed_back = set(failed_ids(response))
    done = [job_id for job_id in job_ids if infra.item(job_id)["status"] == "DONE"]
    assert done, "the jobs that fit must run"
    for job_id in job_ids:
        item = infra.item(job_id)
        if job_id in done:
            assert message_of[job_id] not in handed_back
        else:
            assert message_of[job_id] in handed_back
            assert (item["status"], attempts_of(item)) == ("PENDING", 0)
    assert len(done) + len(handed_back) == len(job_ids)

    # WHEN the mapping settles the batch and delivers what comes back, in new invocations
    handler_modules.settle_batch(infra.sqs, infra.queue_url, records, response)
    for _ in range(len(job_ids)):
        again = infra.receive_records()
        if not again:
            break
        retry = run_batch_on_the_clock(handlers, again, timeout_ms=DEPLOYED_TIMEOUT_MS)
        handler_modules.settle_batch(infra.sqs, infra.queue_url, again, retry)

    # THEN every job ends DONE, each run once, and the queue is empty
    assert [infra.item(job_id)["status"] for job_id in job_ids] == ["DONE"] * len(job_ids)
    assert [attempts_of(infra.item(job_id)) for job_id in job_ids] == [1] * len(job_ids)
    assert infra.queue_depth() == 0
