"""Hostile clients and messages: strict JSON and single-valued headers (POST /jobs, worker)."""

from __future__ import annotations

import pytest

from tests.support.events import assert_json_error
from tests.support.hostile import hostile_requests
from tests.unit.decoupled_invocation.conftest import assert_nothing_written

HOSTILE = hostile_requests(
    '{"task": "checksum", "duration_ms": @@}',
    valid_slot="5",
    # The last value would win: a parser keeping the first reads another request.
    duplicate_top='{"task": "checksum", "duration_ms": 0, "duration_ms": 5}',
)


@pytest.mark.parametrize(("body", "multi_value_headers"), HOSTILE)
def test_hostile_post_is_400_and_writes_nothing(handlers, infra, body, multi_value_headers):
    # GIVEN a body that is not strict JSON, or two different Idempotency-Keys
    # WHEN it is posted
    response = handlers.post(body, multi_value_headers=multi_value_headers)

    # THEN 400 invalid_request in the JSON error shape, no job stored, nothing queued
    assert_json_error(response, 400, "invalid_request")
    assert_nothing_written(infra)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"job_id": "@", "job_id": "@"}', id="duplicate-key"),
        pytest.param('{"job_id": "@", "attempt": NaN}', id="nan"),
        pytest.param('{"job_id": "@", "attempt": 1e309}', id="overflow"),
    ],
)
def test_non_strict_task_message_is_poison_and_the_rest_of_the_batch_runs(
    handlers, infra, events, body
):
    # GIVEN a good job, and a message naming it whose JSON is not strict
    response = handlers.post({"task": "checksum", "input": "x"})
    job_id = response.body["job_id"]
    good = infra.receive_records()
    poison = events.sqs_record(body.replace("@", job_id))

    # WHEN the worker gets both in one batch
    result = handlers.run_worker(events.sqs_event(poison, good[0]))

    # THEN only the poison message is a batch item failure; the good one runs to DONE
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [poison["messageId"]]
    assert infra.item(job_id)["status"] == "DONE"
