"""DynamoDB throttled, failing or unreachable after the SDK's retries: every route answers 503
``service_unavailable`` with ``Retry-After`` (500 ``server_error`` when DynamoDB refused the
call or botocore did not send it) and writes nothing
(``handler_kit.error_answers.dependency_failures``); a failed ventilation keeps its own 503."""

from __future__ import annotations

import pytest

from tests.support.aws_faults import (
    FAILURES,
    answer_of_its_own,
    answer_while_failing,
    is_refused,
    throttled,
    transaction_conflict,
)
from tests.unit.fan_out_fan_in.api_helpers import assert_nothing_written

JOB = {"count": 3}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
def test_get_job_answers_a_failed_dynamodb_call_503_a_refused_one_500(
    handlers, infra, capsys, failure
):
    # GIVEN a submitted job, and DynamoDB failing every call of the API
    job_id = handlers.post(JOB).body["job_id"]
    before = infra.jobs()
    capsys.readouterr()

    # WHEN the client polls it
    response, failed = answer_while_failing(
        lambda: handlers.get(job_id),
        logger=handlers.api.logger,
        client=handlers.api.store._client,
        failure=failure,
        capsys=capsys,
    )

    # THEN 503 with the API's Retry-After (500 for a refused call), logged and counted,
    # and nothing was written
    assert failed == ["GetItem"]
    assert is_refused(failure) or response.headers["retry-after"] == "2"
    assert infra.jobs() == before


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
@pytest.mark.parametrize("headers", [None, {"Idempotency-Key": "k-503"}], ids=["unkeyed", "keyed"])
def test_post_job_answers_a_failed_dynamodb_call_503_a_refused_one_500(
    handlers, infra, capsys, failure, headers
):
    # GIVEN DynamoDB failing every call of the API
    # WHEN a job is submitted
    _, failed = answer_while_failing(
        lambda: handlers.post(JOB, headers=headers),
        logger=handlers.api.logger,
        client=handlers.api.store._client,
        failure=failure,
        capsys=capsys,
    )

    # THEN 503 with Retry-After (500 for a refused call), logged and counted; no job
    # recorded, no subtask sent
    assert failed == ["PutItem"]
    assert_nothing_written(infra)
    # AND the retry, DynamoDB back, is accepted
    assert handlers.post(JOB, headers=headers).status == 202


@pytest.mark.parametrize("conflicts_first", [0, 1], ids=["mark-lands", "mark-meets-a-transaction"])
def test_a_failed_ventilation_keeps_its_own_503(handlers, infra, capsys, conflicts_first):
    # GIVEN SQS throttling every SendMessageBatch after the SDK's retries, and the FAILED
    # mark meeting a worker's transaction in flight on the job item ``conflicts_first``
    # times (TransactionConflictException, which the SDK does not retry)
    conflicts: list[str] = []

    def conflict(**_: object) -> None:
        if len(conflicts) < conflicts_first:
            conflicts.append("UpdateItem")
            raise transaction_conflict("UpdateItem")

    events = handlers.api.store._client.meta.events
    events.register("before-call.dynamodb.UpdateItem", conflict)
    try:
        # WHEN a job is submitted
        answer_of_its_own(
            lambda: handlers.post(JOB),
            logger=handlers.api.logger,
            client=handlers.api.queue._client,
            failure=throttled("SendMessageBatch", "Throttling"),
            capsys=capsys,
            metric="VentilationFailed",
        )
    finally:
        events.unregister("before-call.dynamodb.UpdateItem", conflict)

    # THEN the ventilation failure's own answer: the job is FAILED ventilation_failed and
    # counted as VentilationFailed, not as a failed dependency; a mark that met a
    # transaction was made again (before, a 503 for the conflict, and the job left
    # RUNNING with subtasks unsent)
    assert len(conflicts) == conflicts_first
    (job,) = infra.jobs()
    assert job["status"] == "FAILED" and job["error"]["code"] == "ventilation_failed"
