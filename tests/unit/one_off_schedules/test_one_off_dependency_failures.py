"""DynamoDB throttled, failing or unreachable after the SDK's retries: every route answers 503
``service_unavailable`` with ``Retry-After`` (500 ``server_error`` when DynamoDB refused the
call or botocore did not send it) and writes nothing
(``handler_kit.error_answers.dependency_failures``); a failed CreateSchedule keeps its own
503 and a failed DeleteSchedule its 200."""

from __future__ import annotations

import pytest

from tests.support.aws_faults import (
    FAILURES,
    answer_of_its_own,
    answer_while_failing,
    failing_calls,
    is_refused,
    throttled,
)
from tests.support.events import assert_json_error
from tests.unit.one_off_schedules.conftest import PAYLOAD, assert_nothing_created, in_minutes


def _body() -> dict[str, object]:
    return {"at": in_minutes(10), "payload": PAYLOAD}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_answer_a_failed_dynamodb_call_503_a_refused_one_500(
    handlers, infra, capsys, method, failure
):
    # GIVEN a pending schedule, and DynamoDB failing every call of the API
    schedule_id = handlers.create(_body())
    before = infra.items()
    capsys.readouterr()

    # WHEN the client reads or cancels it
    call = handlers.get if method == "GET" else handlers.cancel
    response, failed = answer_while_failing(
        lambda: call(schedule_id),
        logger=handlers.api.logger,
        client=handlers.api.store._client,
        failure=failure,
        capsys=capsys,
    )

    # THEN 503 with Retry-After (500 for a refused call), no-store as every answer,
    # logged and counted; nothing was written and the schedule still exists
    assert failed == ["GetItem" if method == "GET" else "UpdateItem"]
    assert is_refused(failure) or response.headers["retry-after"] == "2"
    assert response.headers["cache-control"] == "no-store"
    assert infra.items() == before
    assert infra.schedule_names() == [schedule_id]


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES)
@pytest.mark.parametrize("headers", [None, {"Idempotency-Key": "k-503"}], ids=["unkeyed", "keyed"])
def test_post_answers_a_failed_dynamodb_call_503_a_refused_one_500(
    handlers, infra, capsys, failure, headers
):
    # GIVEN DynamoDB failing every call of the API
    # WHEN a schedule is created
    _, failed = answer_while_failing(
        lambda: handlers.post(_body(), headers=headers),
        logger=handlers.api.logger,
        client=handlers.api.store._client,
        failure=failure,
        capsys=capsys,
    )

    # THEN 503 with Retry-After (500 for a refused call), logged and counted; no record,
    # no schedule (a keyed POST first looks for the key's record)
    assert failed == (["GetItem"] if headers else ["PutItem"])
    assert_nothing_created(infra)
    # AND the retry, DynamoDB back, creates it
    assert handlers.post(_body(), headers=headers).status == 201


def test_a_delete_answered_503_after_its_cancel_is_repeated_with_200(handlers, infra):
    # GIVEN a pending schedule, and DynamoDB failing the read after the cancel's write
    schedule_id = handlers.create(_body())
    with failing_calls(handlers.api.store._client, throttled("GetItem"), "GetItem"):
        # WHEN the client cancels it THEN 503: the record is CANCELLED already
        assert_json_error(handlers.cancel(schedule_id), 503, "service_unavailable")
    assert infra.item(schedule_id)["status"] == "CANCELLED"

    # AND the repeated DELETE (it is repeatable) answers 200 and deletes the schedule
    again = handlers.cancel(schedule_id)
    assert again.status == 200 and again.body["status"] == "CANCELLED"
    assert infra.schedule_names() == []


def test_a_failed_create_schedule_keeps_its_own_503(handlers, infra, capsys):
    # GIVEN the Scheduler throttling CreateSchedule after the SDK's retries
    # WHEN an unkeyed schedule is created
    answer_of_its_own(
        lambda: handlers.post(_body()),
        logger=handlers.api.logger,
        client=handlers.api.scheduler._client,
        failure=throttled("CreateSchedule", "Throttling"),
        capsys=capsys,
        metric="ScheduleCreateFailed",
    )

    # THEN the create failure's own answer: its record removed again, counted as
    # ScheduleCreateFailed, not as a failed dependency
    assert_nothing_created(infra)
