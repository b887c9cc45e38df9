"""Worker and reducer: whole jobs through moto's queue and the job table's real stream.

Happy paths, duplicates and TIMED_OUT. ``handlers.run_to_completion`` plays both event
source mappings: it polls the subtask queue in batches of 10 (the worker's partial batch
response decides what is deleted) and passes new stream records through the reducer's
filter to the reducer.
"""

from __future__ import annotations

import json
from typing import Any

from patterns.fan_out_fan_in.scenarios import expected_aggregate
from tests.support.events import sqs_event
from tests.unit.fan_out_fan_in.conftest import JOB_TIMEOUT_SECONDS, sqs_record
from tests.unit.fan_out_fan_in.flow_helpers import submit

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


def test_redelivery_after_the_job_is_done_changes_nothing(handlers, infra):
    # GIVEN a finished job and a copy of one of its messages
    job_id = submit(handlers, {"items": [3, 4]})
    (first, *_) = infra.receive_records()
    handlers.infra.sqs.change_message_visibility(
        QueueUrl=infra.queue_url, ReceiptHandle=first["receiptHandle"], VisibilityTimeout=0
    )
    handlers.run_to_completion()
    before = (infra.job(job_id), infra.results(job_id))

    # WHEN the copy is delivered late
    response = handlers.run_worker(sqs_event(first))

    # THEN it succeeds and nothing changed
    assert response == {"batchItemFailures": []}
    assert (infra.job(job_id), infra.results(job_id)) == before


def test_a_subtask_beyond_a_fully_counted_job_is_refused_not_counted(handlers, infra, capsys):
    # GIVEN a job of two subtasks, both counted (remaining 0), not yet reduced
    job_id = submit(handlers, {"items": [3, 4]})
    handlers.poll_queue()
    assert (infra.job(job_id)["status"], infra.job(job_id)["remaining"]) == ("RUNNING", 0)
    capsys.readouterr()

    # WHEN a message for the same job arrives with an index it never had (2: no duplicate
    # of a counted subtask, so its result item is new)
    body = json.dumps({"job_id": job_id, "index": 2, "value": 5})
    response = handlers.run_worker(sqs_event(sqs_record(body)))

    # THEN the message is consumed as refused by the job: nothing stored or counted
    assert response == {"batchItemFailures": []}
    output = capsys.readouterr().out
    assert '"ResultRefused"' in output and '"SubtasksCompleted"' not in output
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"], job["failed"]) == ("RUNNING", 0, 2, 0)
    assert [result["subtask"] for result in infra.results(job_id)] == [0, 1]
    # AND the job still reduces to the aggregate of its own two subtasks
    handlers.pump_stream()
    job = infra.job(job_id)
    assert (job["status"], job["aggregate"]) == ("DONE", expected_aggregate([3, 4]))


# --------------------------------------------------------------------------- TIMED_OUT


def test_job_not_finished_by_its_deadline_reports_and_becomes_timed_out(handlers, infra):
    # GIVEN a job of 15 subtasks of which one batch (10) was processed
    job_id = submit(handlers, {"count": 15})
    handlers.poll_queue()
    assert infra.job(job_id)["remaining"] == 5

    # WHEN its deadline passes
    handlers.clock.advance(900)

    # THEN the client sees TIMED_OUT at once, stored by that read so the answer is final
    response = handlers.get(job_id)
    assert (response.status, response.body["status"]) == (200, "TIMED_OUT")
    assert response.body["error"]["code"] == "timed_out"
    assert infra.job(job_id)["status"] == "TIMED_OUT"
    # AND the late subtasks are refused (not counted) and close the job
    handlers.run_to_completion()
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("TIMED_OUT", 5, 10)
    assert len(infra.results(job_id)) == 10
    assert "aggregate" not in job


def test_a_count_landing_after_a_get_answered_timed_out_is_refused(handlers, infra):
    """The SDK resends a write whose reply it did not get, with the same values: the
    last subtask's count, stamped before the deadline, can land after it. A GET that
    answered TIMED_OUT has stored it, so the job does not turn DONE afterwards."""
    # GIVEN a job of one subtask, taken by a worker 2 s before the deadline
    job_id = submit(handlers, {"count": 1})
    handlers.clock.advance(898)
    seen: dict[str, Any] = {}

    def count_stalls_while_a_client_polls(**_: Any) -> None:
        if not seen:
            handlers.clock.advance(5)  # the first attempt stalled: past the deadline
            seen["poll"] = handlers.get(job_id)

    handlers.worker.store._client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", count_stalls_while_a_client_polls
    )

    # WHEN its count lands after that poll
    handlers.run_to_completion()

    # THEN the poll's TIMED_OUT is what stays: nothing counted, no aggregate
    assert seen["poll"].body["status"] == "TIMED_OUT"
    after = handlers.get(job_id)
    assert after.raw_body == seen["poll"].raw_body
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("TIMED_OUT", 1, 0)


def test_subtasks_of_a_job_past_its_deadline_are_consumed_without_their_work(handlers, infra):
    # GIVEN a job of 15 one-second subtasks of which one batch (10) was processed
    job_id = submit(handlers, {"count": 15, "work_ms": 1000})
    handlers.poll_queue()
    assert infra.job(job_id)["remaining"] == 5
    slept = len(handlers.sleep.calls)

    # WHEN its deadline passes and the workers take the rest of its messages
    handlers.clock.advance(900)
    handlers.run_to_completion()

    # THEN none of them ran its second of work, the job is TIMED_OUT, nothing was counted
    assert len(handlers.sleep.calls) == slept
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("TIMED_OUT", 5, 10)
    assert len(infra.results(job_id)) == 10


def test_a_count_landing_past_the_deadline_unpolled_is_refused_and_times_out(
    handlers, infra, capsys
):
    # GIVEN a job of one 1-second subtask, taken by a worker 1 s before the deadline, and
    # no client polling while its work runs past it (nothing marks it TIMED_OUT first)
    job_id = submit(handlers, {"items": [6], "work_ms": 1000})
    handlers.clock.advance(JOB_TIMEOUT_SECONDS - 1)
    capsys.readouterr()

    # WHEN the worker runs it and records its result
    response = handlers.poll_queue()

    # THEN the work ran, but the late count is refused: the message is consumed and the
    # delivery closes the job as TIMED_OUT, counted as JobsTimedOut
    assert response == {"batchItemFailures": []}
    assert handlers.sleep.calls == [1.0]
    output = capsys.readouterr().out
    assert '"JobsTimedOut"' in output and '"SubtasksCompleted"' not in output
    # AND nothing was counted or stored, and the job is TIMED_OUT without an aggregate
    job = infra.job(job_id)
    assert (job["status"], job["remaining"], job["done"]) == ("TIMED_OUT", 1, 0)
    assert job["error"]["code"] == "timed_out" and "aggregate" not in job
    assert infra.results(job_id) == []
    # AND a later poll says TIMED_OUT
    after = handlers.get(job_id)
    assert (after.status, after.body["status"]) == (200, "TIMED_OUT")
