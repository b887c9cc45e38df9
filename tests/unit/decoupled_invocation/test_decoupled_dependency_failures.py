"""DynamoDB throttled or unreachable after the SDK's retries: every route answers 503
``service_unavailable`` with ``Retry-After`` and writes nothing
(``handler_kit.responses.dependency_failures``); a failed SendMessage keeps its own 503."""

from __future__ import annotations

import pytest

from tests.support.aws_faults import (
    FAILURES,
    assert_dependency_failed,
    failing_calls,
    recorded_logs,
    throttled,
)
from tests.support.events import assert_json_error
from tests.unit.decoupled_invocation.conftest import RETRY_AFTER_SECONDS, VALID


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
def test_get_job_answers_a_failed_dynamodb_call_503(handlers, infra, capsys, failure):
    # GIVEN a submitted job, and DynamoDB failing every call of the API
    job_id = handlers.post(VALID).body["job_id"]
    before = infra.items()
    capsys.readouterr()

    # WHEN the client polls it
    with (
        recorded_logs(handlers.api.logger) as logs,
        failing_calls(handlers.api.store._client, failure) as failed,
    ):
        response = handlers.get(job_id)

    # THEN 503 with the API's Retry-After, logged and counted, and nothing was written
    assert failed == ["GetItem"]
    assert_dependency_failed(response, logs=logs, output=capsys.readouterr().out)
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert infra.items() == before


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
@pytest.mark.parametrize("headers", [None, {"Idempotency-Key": "k-503"}], ids=["unkeyed", "keyed"])
def test_post_job_answers_a_failed_dynamodb_call_503(handlers, infra, capsys, failure, headers):
    # GIVEN DynamoDB failing every call of the API
    # WHEN a job is submitted
    with (
        recorded_logs(handlers.api.logger) as logs,
        failing_calls(handlers.api.store._client, failure) as failed,
    ):
        response = handlers.post(VALID, headers=headers)

    # THEN 503 with Retry-After, logged and counted; no job stored and nothing queued
    assert failed == ["PutItem"]
    assert_dependency_failed(response, logs=logs, output=capsys.readouterr().out)
    assert infra.items() == [] and infra.queue_depth() == 0
    # AND the retry, DynamoDB back, is accepted
    assert handlers.post(VALID, headers=headers).status == 202


def test_a_failed_send_keeps_its_own_503(handlers, infra, capsys):
    # GIVEN SQS throttling SendMessage after the SDK's retries
    # WHEN a job is submitted
    with (
        recorded_logs(handlers.api.logger) as logs,
        failing_calls(handlers.api.queue._client, throttled("SendMessage", "ThrottlingException")),
    ):
        response = handlers.post(VALID)

    # THEN the enqueue failure's own answer: the job is marked FAILED enqueue_failed and
    # counted as EnqueueFailed, not as a failed dependency
    assert_json_error(response, 503, "service_unavailable")
    [item] = infra.items()
    assert item["status"] == "FAILED" and item["error"]["code"] == "enqueue_failed"
    output = capsys.readouterr().out
    assert '"EnqueueFailed"' in output and '"DependencyFailed"' not in output
    assert "AWS request failed" not in [r.getMessage() for r in logs]
