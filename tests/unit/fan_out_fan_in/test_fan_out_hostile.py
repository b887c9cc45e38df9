"""Hostile clients and messages: strict JSON and unambiguous headers (POST /jobs, worker)."""

from __future__ import annotations

import json

import pytest

from tests.support.events import sqs_event
from tests.support.hostile import HostilePostTests, hostile_requests
from tests.unit.fan_out_fan_in.conftest import sqs_record


class TestHostilePost(HostilePostTests):
    """POST /jobs: a hostile request stores no job and sends no subtask."""

    HOSTILE = hostile_requests(
        '{"count": 2, "work_ms": @@}',
        valid_slot="0",
        # The last value would win: a parser keeping the first reads another job.
        duplicate_top='{"count": 1, "count": 3}',
    )
    VALID = '{"count": 2, "work_ms": 0}'

    def snapshot(self, infra):
        return infra.jobs(), infra.queue_depth()

    def assert_nothing_written(self, infra):
        assert infra.jobs() == []
        assert infra.queue_depth() == 0


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(', "value": 999', id="duplicate-key"),
        pytest.param(', "extra": NaN', id="nan"),
        pytest.param(', "extra": -1e309', id="overflow"),
    ],
)
def test_non_strict_subtask_message_is_poison_and_the_rest_of_the_batch_runs(handlers, infra, tail):
    # GIVEN a two-subtask job, and subtask 1's message made non-strict
    response = handlers.post({"items": [1, 2]})
    job_id = response.body["job_id"]
    good = sorted(infra.receive_records(), key=lambda r: json.loads(r["body"])["index"])
    poison = sqs_record(good[1]["body"][:-1] + tail + "}")

    # WHEN the worker gets it with subtask 0 in one batch
    result = handlers.run_worker(sqs_event(poison, good[0]))

    # THEN only the poison message is a batch item failure; subtask 0 alone is counted
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [poison["messageId"]]
    assert infra.job(job_id)["remaining"] == 1
    assert len(infra.results(job_id)) == 1
