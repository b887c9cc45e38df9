"""DynamoDB throttled, failing or unreachable after the SDK's retries: every route answers 503
``service_unavailable`` with ``Retry-After`` (500 ``server_error`` when DynamoDB refused the
call or botocore did not send it) and writes nothing
(``handler_kit.error_answers.dependency_failures``); a failed SendMessage keeps its own 503."""

from __future__ import annotations

import pytest

from tests.support.aws_faults import (
    FAILURES,
    answer_of_its_own,
    answer_while_failing,
    is_refused,
    throttled,
)
from tests.unit.decoupled_invocation.conftest import RETRY_AFTER_SECONDS, VALID


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
def test_get_job_answers_a_failed_dynamodb_call_503_a_refused_one_500(
    handlers, infra, capsys, failure
):
    # GIVEN a submitted job, and DynamoDB failing every call of the API
    job_id = handlers.post(VALID).body["job_id"]
    before = infra.items()
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
    assert is_refused(failure) or response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert infra.items() == before


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
@pytest.mark.parametrize("headers", [None, {"Idempotency-Key": "k-503"}], ids=["unkeyed", "keyed"])
def test_post_job_answers_a_failed_dynamodb_call_503_a_refused_one_500(
    handlers, infra, capsys, failure, headers
):
    # GIVEN DynamoDB failing every call of the API
    # WHEN a job is submitted
    _, failed = answer_while_failing(
        lambda: handlers.post(VALID, headers=headers),
        logger=handlers.api.logger,
        client=handlers.api.store._client,
        failure=failure,
        capsys=capsys,
    )

    # THEN 503 with Retry-After (500 for a refused call), logged and counted; no job
    # stored and nothing queued
    assert failed == ["PutItem"]
    assert infra.items() == [] and infra.queue_depth() == 0
    # AND the retry, DynamoDB back, is accepted
    assert handlers.post(VALID, headers=headers).status == 202


def test_a_failed_send_keeps_its_own_503(handlers, infra, capsys):
    # GIVEN SQS throttling SendMessage after the SDK's retries
    # WHEN a job is submitted
    answer_of_its_own(
        lambda: handlers.post(VALID),
        logger=handlers.api.logger,
        client=handlers.api.queue._client,
        failure=throttled("SendMessage", "ThrottlingException"),
        capsys=capsys,
        metric="EnqueueFailed",
    )

    # THEN the enqueue failure's own answer: the job is marked FAILED enqueue_failed and
    # counted as EnqueueFailed, not as a failed dependency
    [item] = infra.items()
    assert item["status"] == "FAILED" and item["error"]["code"] == "enqueue_failed"
