"""fan_out_api.handler against moto: POST /jobs (the ventilator) and GET /jobs/{job_id}."""

from __future__ import annotations

import json
import math
import threading
import uuid
from types import SimpleNamespace
from unittest.mock import ANY

import pytest
from handler_kit.fair_queues import message_group_id

from tests.support import handlers as handler_modules
from tests.support.answers import created_id
from tests.support.aws_faults import first_reply_lost
from tests.support.events import assert_json_error
from tests.support.fakes import START
from tests.unit.fan_out_fan_in.api_helpers import (
    ARN_PREFIX,
    count_send_calls,
    queued_bodies,
)
from tests.unit.fan_out_fan_in.conftest import (
    JOB_TIMEOUT_SECONDS,
    RETRY_AFTER_SECONDS,
    STAGE,
    post_jobs_event,
)

# --------------------------------------------------------------------------- POST happy path


def test_post_one_item_records_the_job_then_sends_one_subtask(handlers, infra):
    # GIVEN an empty table and queue
    # WHEN a client submits a job of one item
    response = handlers.post({"items": [7]})

    # THEN it gets 202 with Location under the stage and Retry-After
    job_id = created_id(response, 202, "job_id", f"/{STAGE}/jobs")
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.body == {
        "job_id": job_id,
        "status": "RUNNING",
        "total": 1,
        "created_at": "2025-03-14T09:26:53.589Z",
        "links": {"self": f"/{STAGE}/jobs/{job_id}"},
    }
    # AND the job item holds the counter at N before any subtask was counted
    created = int(START.timestamp())
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
            "deadline_epoch": created + JOB_TIMEOUT_SECONDS,
            "expires_at": created + JOB_TIMEOUT_SECONDS + 7 * 86_400,
            "updated_at": "2025-03-14T09:26:53.589Z",
            "request": {"source": "items", "fail_indexes": [], "work_ms": 0},
            "write_token": ANY,
        }
    ]
    # AND exactly one subtask message, carrying the job's deadline (past it, no work)
    deadline = created + JOB_TIMEOUT_SECONDS
    assert queued_bodies(infra) == [
        {"job_id": job_id, "index": 0, "value": 7, "deadline_epoch": deadline}
    ]


def test_a_post_whose_put_reply_was_lost_ventilates_its_job(handlers, infra):
    # GIVEN DynamoDB storing the new job but losing the reply: the SDK's retry of the put
    # fails its condition on the job it wrote
    with first_reply_lost(handlers.roles["api"].store._client, "PutItem", lambda _: True) as lost:
        # WHEN a job of two items is submitted without a key
        response = handlers.post({"items": [7, 8]})

    # THEN the put is known as its own: 202, and both subtasks are sent (read as a random
    # id already taken, the POST failed with a 5xx and sent nothing)
    job_id = created_id(response, 202, "job_id", f"/{STAGE}/jobs")
    assert lost and [body["index"] for body in queued_bodies(infra)] == [0, 1]
    assert [job["job_id"] for job in infra.jobs()] == [job_id]


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
            "deadline_epoch": int(START.timestamp()) + JOB_TIMEOUT_SECONDS,
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

    def __init__(self, refused: frozenset[str] = frozenset()) -> None:
        self.lock = threading.Lock()
        self.bodies: list[str] = []
        self.calls = 0
        self.refused = refused  # entry ids refused as the sender's fault

    def send_batch(self, entries: list[tuple[str, str]]) -> SimpleNamespace:
        assert len(entries) <= 10
        refused = [entry_id for entry_id, _ in entries if entry_id in self.refused]
        with self.lock:
            self.calls += 1
            self.bodies += [body for entry_id, body in entries if entry_id not in refused]
        return SimpleNamespace(retryable=[], refused=refused)


def test_ten_thousand_subtasks_are_ventilated_in_a_thousand_parallel_calls(handlers):
    # GIVEN the largest job allowed, as a list of items
    request = handlers.messages.parse_job_request(
        json.dumps({"items": list(range(10_000))}).encode()
    )
    queue = InMemoryQueue()

    # WHEN it is ventilated with 16 parallel senders
    report = handlers.service.ventilate(
        queue, handlers.service.subtask_messages(str(uuid.uuid4()), request), concurrency=16
    )

    # THEN 1,000 calls sent every index once
    assert (report.sent, report.unsent, report.calls, queue.calls) == (10_000, [], 1_000, 1_000)
    assert sorted(json.loads(body)["index"] for body in queue.bodies) == list(range(10_000))


@pytest.mark.parametrize(
    ("refused", "seconds_left", "expected"),
    [
        # one entry refused as the sender's fault: not resent, the rest counted sent
        (frozenset({"3"}), math.inf, (11, [3], 2)),
        # no time left: no call is made, and every subtask is unsent
        (frozenset(), 0.0, (0, list(range(12)), 0)),
    ],
    ids=["one-refused", "no-time-left"],
)
def test_the_ventilation_report_counts_what_was_sent_and_what_was_not(
    handlers, refused: frozenset[str], seconds_left: float, expected: tuple[int, list[int], int]
):
    # GIVEN a job of 12 subtasks (two SendMessageBatch chunks)
    request = handlers.messages.parse_job_request(json.dumps({"items": list(range(12))}).encode())
    messages = handlers.service.subtask_messages(str(uuid.uuid4()), request)

    # WHEN it is ventilated
    report = handlers.service.ventilate(
        InMemoryQueue(refused), messages, concurrency=2, time_left=lambda: seconds_left
    )

    # THEN the report says how many were sent, which were not, and the calls made
    assert (report.sent, report.unsent, report.calls) == expected


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


def test_unknown_route_is_json_404(handlers):
    event = post_jobs_event({"count": 1})
    event["path"] = event["resource"] = "/other"
    assert_json_error(handlers.call_api(event), 404, "not_found")


def test_subtasks_carry_their_callers_message_group_for_fair_queueing(handlers, infra):
    # GIVEN two callers, one of whom submits two jobs
    alice, bob = f"{ARN_PREFIX}:user/alice", f"{ARN_PREFIX}:user/bob"

    # WHEN they submit
    for caller, count in ((alice, 12), (bob, 3), (alice, 2)):
        assert handlers.post({"count": count, "seed": 1}, user_arn=caller).status == 202

    # THEN every subtask names its caller as its tenant (SQS fair queues): one group per
    # caller across jobs, a digest of the identity that fits SQS's 128 characters
    groups = handler_modules.queued_groups(infra.sqs, infra.queue_url)
    assert groups == {message_group_id(alice): 14, message_group_id(bob): 3}
    assert all(group and len(group) <= 128 and "alice" not in group for group in groups)
