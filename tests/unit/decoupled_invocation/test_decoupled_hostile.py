"""Hostile clients and messages: strict JSON and unambiguous headers (POST /jobs, worker)."""

from __future__ import annotations

import pytest

from tests.support.events import sqs_event
from tests.support.hostile import HostilePostTests, hostile_requests
from tests.unit.decoupled_invocation.conftest import assert_nothing_written, sqs_record


class TestHostilePost(HostilePostTests):
    """POST /jobs: a hostile request stores no job and queues nothing."""

    HOSTILE = hostile_requests(
        '{"task": "checksum", "duration_ms": @@}',
        valid_slot="5",
        # The last value would win: a parser keeping the first reads another request.
        duplicate_top='{"task": "checksum", "duration_ms": 0, "duration_ms": 5}',
    )
    VALID = '{"task": "checksum", "duration_ms": 5}'

    def settle(self, handlers):
        # A replay of a job still PENDING sends it to the queue again (by design).
        handlers.drain_queue()

    def snapshot(self, infra):
        return infra.items(), infra.queue_depth()

    def assert_nothing_written(self, infra):
        assert_nothing_written(infra)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"job_id": "@", "job_id": "@"}', id="duplicate-key"),
        pytest.param('{"job_id": "@", "attempt": NaN}', id="nan"),
        pytest.param('{"job_id": "@", "attempt": 1e309}', id="overflow"),
    ],
)
def test_non_strict_task_message_is_poison_and_the_rest_of_the_batch_runs(handlers, infra, body):
    # GIVEN a good job, and a message naming it whose JSON is not strict
    response = handlers.post({"task": "checksum", "input": "x"})
    job_id = response.body["job_id"]
    good = infra.receive_records()
    poison = sqs_record(body.replace("@", job_id))

    # WHEN the worker gets both in one batch
    result = handlers.run_worker(sqs_event(poison, good[0]))

    # THEN only the poison message is a batch item failure; the good one runs to DONE
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [poison["messageId"]]
    assert infra.item(job_id)["status"] == "DONE"
