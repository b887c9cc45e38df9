"""fan_out_api.handler against moto: failures while ventilating the subtasks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.support.aws_faults import (
    attempts_stall,
    backoff_before_2026,
    calls_take,
    first_reply_lost,
)
from tests.support.events import HttpResponse, assert_json_error
from tests.unit.fan_out_fan_in.api_helpers import (
    queued_bodies,
)
from tests.unit.fan_out_fan_in.conftest import post_jobs_event

# --------------------------------------------------------------------------- ventilation failures


class FlakySqs:
    """An SQS client that reports chosen entries as failed on their first send(s).

    Entries it does not fail go to the real (moto) client, so the queue shows what
    SQS would hold.
    """

    def __init__(
        self, real: Any, *, fail_ids: set[str], times: int, sender_fault: bool = False
    ) -> None:
        self.real = real
        self.meta = real.meta
        self.fail_ids = fail_ids
        self.remaining_failures = {entry_id: times for entry_id in fail_ids}
        self.failure = (
            {"SenderFault": True, "Code": "InvalidParameterValue"}
            if sender_fault
            else {"SenderFault": False, "Code": "InternalError"}
        )
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append([entry["Id"] for entry in Entries])
        failed, passed = [], []
        for entry in Entries:
            if self.remaining_failures.get(entry["Id"], 0) > 0:
                self.remaining_failures[entry["Id"]] -= 1
                failed.append({"Id": entry["Id"], **self.failure})
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


def test_a_failure_mark_whose_reply_was_lost_still_answers_503(handlers, infra, monkeypatch):
    # GIVEN SQS failing entry 4 on every attempt, and DynamoDB applying the job's move to
    # FAILED but losing the reply, so the SDK's retry fails its condition on it
    monkeypatch.setattr(
        handlers.api.queue, "_client", FlakySqs(handlers.api.queue._client, fail_ids={"4"}, times=9)
    )
    marks = lambda params: "#error = :error" in params["UpdateExpression"]  # noqa: E731

    # WHEN a job of 12 subtasks is submitted
    with first_reply_lost(handlers.api.store._client, "UpdateItem", marks) as lost:
        response = handlers.post({"count": 12})

    # THEN the job is FAILED and the client is told so (read as "every subtask was
    # counted after all", the POST answered 202 for a job that never finishes)
    assert lost
    assert_json_error(response, 503, "service_unavailable")
    assert [job["error"]["code"] for job in infra.jobs()] == ["ventilation_failed"]


def test_an_entry_refused_as_the_sender_s_fault_is_not_resent_and_fails_the_job(
    handlers, infra, monkeypatch
):
    # GIVEN SQS refuses entry 4 as the sender's fault (it would refuse it every time)
    flaky = FlakySqs(handlers.api.queue._client, fail_ids={"4"}, times=100, sender_fault=True)
    monkeypatch.setattr(handlers.api.queue, "_client", flaky)

    # WHEN a job of 12 subtasks is submitted
    response = handlers.post({"count": 12})

    # THEN entry 4 was sent once, never again and without a backoff wait
    assert [ids for ids in flaky.calls if "4" in ids] == [[str(i) for i in range(10)]]
    assert handlers.sleep.calls == []
    # AND the job is FAILED and the client gets the 503 at once
    assert_json_error(response, 503, "service_unavailable")
    (job,) = infra.jobs()
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "ventilation_failed"


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


@pytest.mark.parametrize("shortfall_ms", [1, 7_000], ids=["1ms-short", "7s-short"])
def test_ventilation_stops_before_the_function_timeout(handlers, infra, shortfall_ms):
    # GIVEN an invocation with less time left than the safety margin and one whole
    # SendMessageBatch call (just under, or far under)
    api = handlers.roles["api"]
    needed_ms = round((api.SAFETY_MARGIN_SECONDS + api.SEND_CALL_SECONDS) * 1000)
    # WHEN a job is submitted
    response = handlers.call_api(
        post_jobs_event({"count": 30}), remaining_ms=needed_ms - shortfall_ms
    )

    # THEN nothing is sent, and the job is FAILED instead of left RUNNING
    assert_json_error(response, 503, "service_unavailable")
    assert infra.queue_depth() == 0
    assert infra.jobs()[0]["status"] == "FAILED"


def test_ventilation_stops_before_api_gateways_timeout_which_counts_the_init(handlers, infra):
    # GIVEN a request API Gateway has held for 27 s when the handler starts (a slow
    # cold start), and the function's own 28 s all ahead of it
    # WHEN a job is submitted
    response = handlers.call_api(
        post_jobs_event({"count": 30}), remaining_ms=28_000, arrived_ms_ago=27_000
    )

    # THEN it stops within API Gateway's 29 s, not the function's: nothing sent, the
    # job FAILED and answered 503 (not a gateway timeout while the job goes on)
    assert_json_error(response, 503, "service_unavailable")
    assert infra.queue_depth() == 0
    assert infra.jobs()[0]["status"] == "FAILED"


#: The API function's timeout (construct.py), under API Gateway's 29 s.
API_TIMEOUT_MS = 28_000


#: A DynamoDB or SQS round trip on the fake clock (each attempt of a call).
ROUND_TRIP_S = 0.01


@pytest.mark.parametrize("old_backoff", [False, True], ids=["backoff-now", "backoff-before-2026"])
def test_a_stalled_sqs_cannot_run_the_ventilator_past_its_timeout(handlers, infra, old_backoff):
    # GIVEN a job put whose first attempt stalls (its retry lands), then an SQS whose
    # every attempt stalls until the client's own timeouts give up on it, and a first
    # attempt of the job's FAILED mark that stalls too
    started = handlers.clock()
    event = post_jobs_event({"count": 10})
    event["requestContext"]["requestTimeEpoch"] = int(started.timestamp() * 1000)
    advance = handlers.clock.advance

    # WHEN the job is submitted, the invocation's time running down with the clock
    with (
        backoff_before_2026(old_backoff),
        calls_take(handlers.api.store._client, advance, ROUND_TRIP_S),
        calls_take(handlers.api.queue._client, advance, ROUND_TRIP_S),
        attempts_stall(handlers.api.store._client, "PutItem", advance),
        attempts_stall(handlers.api.store._client, "UpdateItem", advance),
        attempts_stall(handlers.api.queue._client, "SendMessageBatch", advance, count=math.inf),
    ):
        raw = handlers.invoke(
            "api", event, "FanOutApi", remaining_ms=API_TIMEOUT_MS, clock=handlers.clock
        )

    # THEN the answer came before the function's timeout (on AWS, a later one is cut
    # off: a 504 and a job left RUNNING with nothing sent): 503, the job FAILED
    elapsed_ms = (handlers.clock() - started).total_seconds() * 1000
    assert elapsed_ms < API_TIMEOUT_MS
    assert_json_error(HttpResponse.from_proxy(raw), 503, "service_unavailable")
    (job,) = infra.jobs()
    assert (job["status"], job["error"]["code"]) == ("FAILED", "ventilation_failed")
    assert infra.queue_depth() == 0


class StoredThenLost:
    """SendMessageBatch that stores every entry and then raises, as a call whose
    response was lost does; before the last attempt's error, ``during`` runs (the
    workers are fast, the API is still between its attempts)."""

    def __init__(self, real: Any, during: Callable[[], object], *, calls: int) -> None:
        self.real = real
        self.meta = real.meta
        self.during = during
        self.last_call = calls
        self.calls = 0

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.real.send_message_batch(**kwargs)
        if self.calls == self.last_call:
            self.during()
        raise ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")


def _workers_only(handlers: Any) -> None:
    while handlers.poll_queue() is not None:
        pass


@pytest.mark.parametrize(
    "during",
    [lambda h: h.run_to_completion(), _workers_only],
    ids=["reduced-meanwhile", "counted-not-yet-reduced"],
)
def test_sends_that_failed_after_sqs_stored_them_do_not_fail_a_counted_job(
    handlers, infra, monkeypatch, during
):
    # GIVEN SQS that stores every batch and then loses the response, so each of the 5
    # attempts at a job of 10 "fails", while the workers count every subtask
    lost = StoredThenLost(handlers.api.queue._client, lambda: during(handlers), calls=5)
    monkeypatch.setattr(handlers.api.queue, "_client", lost)

    # WHEN the job is submitted, and the stream reaches the reducer
    response = handlers.post({"count": 10}, headers={"Idempotency-Key": "k-lost"})
    handlers.run_to_completion()

    # THEN the client is answered 202 (not told to submit again, which would run every
    # subtask twice), and the job ends DONE with each subtask counted once
    assert response.status == 202, response.body
    (job,) = infra.jobs()
    assert job["status"] == "DONE", job.get("error")
    assert job["aggregate"]["count"] == 10 and job["aggregate"]["failed"] == 0
