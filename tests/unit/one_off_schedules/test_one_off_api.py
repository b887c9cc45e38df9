"""schedule_api.handler: POST /schedules against moto's DynamoDB and EventBridge Scheduler."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.answers import created_id
from tests.support.aws_faults import first_reply_lost
from tests.support.events import assert_json_error
from tests.support.fakes import START
from tests.unit.one_off_schedules.conftest import (
    ALICE_ARN,
    BOB_ARN,
    EXECUTOR_ARN,
    HORIZON_SECONDS,
    PAYLOAD,
    RETENTION_DAYS,
    SCHEDULE_MAX_EVENT_AGE_SECONDS,
    SCHEDULE_RETRY_ATTEMPTS,
    SCHEDULER_ROLE_ARN,
    STAGE,
    assert_nothing_created,
    first_attempt_fails,
    in_minutes,
)

# --------------------------------------------------------------------------- POST


def test_post_stores_pending_record_and_creates_one_time_schedule(handlers, infra):
    # GIVEN an empty table and schedule group
    # WHEN a client asks for a run ten minutes from now
    response = handlers.post({"at": in_minutes(10), "payload": PAYLOAD})

    # THEN it gets 201 with the PENDING schedule and its location under the stage
    schedule_id = created_id(response, 201, "schedule_id", f"/{STAGE}/schedules")
    location = f"/{STAGE}/schedules/{schedule_id}"
    assert response.body == {
        "schedule_id": schedule_id,
        "status": "PENDING",
        "at": "2025-03-14T09:36:53.000Z",
        "created_at": "2025-03-14T09:26:53.589Z",
        "updated_at": "2025-03-14T09:26:53.589Z",
        "attempts": 0,
        "schedule_deleted_at": None,
        "links": {"self": location},
    }
    # AND one record, with the payload as JSON text and a TTL after the run
    (item,) = infra.items()
    assert item["status"] == "PENDING"
    assert json.loads(item["payload"]) == PAYLOAD
    assert item["expires_at"] == item["at_epoch"] + RETENTION_DAYS * 86_400
    # AND exactly one schedule in the pattern's group, named by the id
    assert infra.schedule_names() == [schedule_id]
    schedule = infra.schedule(schedule_id)
    assert schedule["ScheduleExpression"] == "at(2025-03-14T09:36:53)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == EXECUTOR_ARN
    assert target["RoleArn"] == SCHEDULER_ROLE_ARN
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": SCHEDULE_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": SCHEDULE_MAX_EVENT_AGE_SECONDS,
    }
    assert target["DeadLetterConfig"]["Arn"] == infra.dead_letter_queue_arn
    # AND the input carries the payload and every Scheduler context attribute
    assert json.loads(target["Input"]) == {
        "schedule_id": schedule_id,
        "payload": PAYLOAD,
        "outcome": "succeed",
        "schedule_arn": "<aws.scheduler.schedule-arn>",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "execution_id": "<aws.scheduler.execution-id>",
        "attempt_number": "<aws.scheduler.attempt-number>",
    }


def test_a_post_whose_put_reply_was_lost_creates_its_schedule(handlers, infra):
    # GIVEN DynamoDB storing the new record but losing the reply: the SDK's retry of the
    # put fails its condition on the record it wrote
    with first_reply_lost(handlers.roles["api"].store._client, "PutItem", lambda _: True) as lost:
        # WHEN a run is asked for without a key
        response = handlers.post({"at": in_minutes(10), "payload": PAYLOAD})

    # THEN the put is known as its own: 201 with the one schedule it created (read as a
    # random id already taken, the POST failed with a 5xx and created no schedule)
    schedule_id = created_id(response, 201, "schedule_id", f"/{STAGE}/schedules")
    assert lost and infra.schedule_names() == [schedule_id]
    assert [(item["schedule_id"], item["status"]) for item in infra.items()] == [
        (schedule_id, "PENDING")
    ]


def test_offset_time_is_converted_to_utc_and_rounded_up_to_the_second(handlers, infra):
    # GIVEN a time with a +02:00 offset and a fraction of a second
    # WHEN it is scheduled
    schedule_id = handlers.create({"at": "2025-03-14T12:00:00.250+02:00"})

    # THEN the schedule fires at the next whole second in UTC, never before the time
    assert infra.schedule(schedule_id)["ScheduleExpression"] == "at(2025-03-14T10:00:01)"
    assert infra.item(schedule_id)["at"] == "2025-03-14T10:00:01.000Z"


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("2025-03-14T10:00:00", "timezone"),  # no timezone
        ("2025-03-15", "timezone"),  # a date only (midnight, no timezone)
        ("2025-03-14T09:26:53Z", "future"),  # now (not after it)
        # Past instants within the clock's second (it reads 09:26:53.589): rounded up to
        # 09:26:54 they would be ahead of now, but the time asked for has passed.
        ("2025-03-14T09:26:53.100Z", "future"),
        ("2025-03-14T09:26:53.589Z", "future"),  # now, to the millisecond
        ("2025-03-14T09:00:00Z", "future"),  # past
        ("2024-03-14T09:00:00+05:00", "future"),  # long past, with an offset
        ("2025-04-14T09:26:54Z", "at most"),  # just beyond the 30-day horizon
        ("9999-12-31T23:59:59.5Z", "at most"),  # rounded up to the second: year 10000
        ("9999-12-31T23:59:59-01:00", "real date"),  # year 10000 once in UTC
        ("0001-01-01T00:00:00+00:01", "real date"),  # year 0 once in UTC
        ("tomorrow at noon", "ISO-8601"),  # unparseable
        ("2025-13-01T00:00:00Z", "ISO-8601"),  # month 13
        ("2025-03-14T25:00:00Z", "ISO-8601"),  # hour 25
    ],
)
def test_bad_times_are_400_and_create_nothing(handlers, infra, at, reason):
    # GIVEN a time that is unusable
    # WHEN it is posted
    response = handlers.post({"at": at, "payload": PAYLOAD})

    # THEN 400 invalid_time says why, and nothing is written or scheduled
    assert_json_error(response, 400, "invalid_time")
    assert reason in response.body["message"]
    assert_nothing_created(infra)


def test_time_at_the_horizon_is_accepted(handlers, infra):
    # GIVEN a time exactly the horizon ahead (whole seconds, so no rounding up)
    handlers.clock.now = START.replace(microsecond=0)
    at = handlers.clock.now + timedelta(seconds=HORIZON_SECONDS)
    text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # WHEN it is posted THEN it is scheduled
    assert handlers.post({"at": text}).status == 201
    assert len(infra.schedule_names()) == 1


def test_a_time_just_after_now_is_accepted_and_fires_the_next_second(handlers, infra):
    # GIVEN a time a millisecond after now (the clock reads 09:26:53.589)
    # WHEN it is posted
    schedule_id = handlers.create({"at": "2025-03-14T09:26:53.590Z"})

    # THEN it is scheduled at the next whole second, never before the time asked for
    assert infra.schedule(schedule_id)["ScheduleExpression"] == "at(2025-03-14T09:26:54)"


def test_a_time_within_the_horizon_by_a_fraction_is_accepted(handlers, infra):
    # GIVEN a time 0.089 s before the horizon's end (the clock reads 09:26:53.589)
    at = "2025-04-13T09:26:53.5Z"
    assert START + timedelta(seconds=HORIZON_SECONDS) > datetime.fromisoformat(at)

    # WHEN it is posted
    schedule_id = handlers.create({"at": at})

    # THEN it is accepted (the horizon bounds the time asked for), firing the next second
    assert infra.schedule(schedule_id)["ScheduleExpression"] == "at(2025-04-13T09:26:54)"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "invalid_request"),  # no body
        ("", "invalid_request"),
        ("{not json", "invalid_request"),
        ("[]", "invalid_request"),
        ({"payload": PAYLOAD}, "invalid_request"),  # at missing
        ({"at": 1741944473}, "invalid_request"),  # epoch number, not a string
        ({"at": "2025-03-14T10:00:00Z", "payload": [1, 2]}, "invalid_request"),
        ({"at": "2025-03-14T10:00:00Z", "payload": "x"}, "invalid_request"),
        ({"at": "2025-03-14T10:00:00Z", "outcome": "explode"}, "invalid_request"),
        ({"at": "2025-03-14T10:00:00Z", "cron": "* * * * *"}, "invalid_request"),  # extra field
        ({"at": "2025-03-14T10:00:00Z", "payload": {"blob": "x" * 9000}}, "payload_too_large"),
        ("x" * 17_000, "payload_too_large"),
    ],
)
def test_bad_bodies_are_400_and_create_nothing(handlers, infra, body, code):
    # GIVEN a malformed request WHEN it is posted
    response = handlers.post(body)

    # THEN a JSON 400 and nothing is written or scheduled
    assert_json_error(response, 400, code)
    assert_nothing_created(infra)


def test_same_idempotency_key_never_makes_a_second_schedule(handlers, infra):
    # GIVEN a schedule created with an Idempotency-Key
    body = {"at": in_minutes(5), "payload": PAYLOAD}
    first = handlers.post(body, headers={"Idempotency-Key": "order-o-123"})
    assert first.status == 201

    # WHEN the client retries the same request, twice (e.g. after timeouts)
    second = handlers.post(body, headers={"Idempotency-Key": "order-o-123"})
    handlers.clock.advance(30)
    third = handlers.post(body, headers={"idempotency-key": "order-o-123"})

    # THEN the retries get the first answer (201, the same schedule, the same bytes)
    assert (second.status, third.status) == (201, 201)
    assert second.raw_body == third.raw_body == first.raw_body
    assert uuid.UUID(first.body["schedule_id"]).version == 5
    # AND there is still exactly one record and one schedule
    assert len(infra.items()) == 1
    assert infra.schedule_names() == [first.body["schedule_id"]]


def test_replay_after_the_time_passed_answers_from_the_record(handlers, infra):
    # GIVEN a keyed schedule that already ran
    body = {"at": in_minutes(1)}
    first = handlers.post(body, headers={"Idempotency-Key": "k-late"})
    handlers.deliver(handlers.fire(first.body["schedule_id"]))

    # WHEN the client retries the original request after the time passed
    handlers.clock.advance(3600)
    response = handlers.post(body, headers={"Idempotency-Key": "k-late"})

    # THEN it gets the first answer (not a 400 for a past time) and nothing new; the
    # schedule's state now is GET's to tell
    assert response.status == 201
    assert response.raw_body == first.raw_body
    assert handlers.get(first.body["schedule_id"]).body["status"] == "DONE"
    assert infra.schedule_names() == []
    assert len(infra.items()) == 1


def test_same_key_with_a_different_body_is_422(handlers, infra):
    # GIVEN a keyed schedule
    handlers.create({"at": in_minutes(5)}, headers={"Idempotency-Key": "k1"})

    # WHEN the key is reused for another request
    response = handlers.post({"at": in_minutes(6)}, headers={"Idempotency-Key": "k1"})

    # THEN 422 and nothing more is scheduled
    assert_json_error(response, 422, "idempotency_key_reused")
    assert len(infra.schedule_names()) == 1


@pytest.mark.parametrize(
    "at",
    [
        "garbage",
        "2030-01-01T10:00:00",
        "2030-02-30T10:00:00Z",
        # No instant in UTC (year 10000 or 0 there; a keyed retry of one was once a 502)
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+00:01",
    ],
)
def test_a_malformed_at_is_400_even_with_a_used_key(handlers, infra, at):
    # GIVEN a keyed schedule
    handlers.create({"at": in_minutes(5)}, headers={"Idempotency-Key": "k1"})

    # WHEN the key comes again with an `at` that is no time at all
    response = handlers.post({"at": at}, headers={"Idempotency-Key": "k1"})

    # THEN it is the 400 any request with that body gets, not a key conflict
    assert_json_error(response, 400, "invalid_time")
    assert len(infra.schedule_names()) == 1


def test_idempotency_keys_are_scoped_per_caller(handlers, infra):
    # GIVEN two callers using the same key
    body = {"at": in_minutes(5)}
    alice = handlers.create(body, headers={"Idempotency-Key": "k"}, user_arn=ALICE_ARN)
    bob = handlers.create(body, headers={"Idempotency-Key": "k"}, user_arn=BOB_ARN)

    # THEN each has their own schedule
    assert alice != bob
    assert infra.schedule_names() == sorted([alice, bob])


@pytest.mark.parametrize(
    "headers",
    [{"Idempotency-Key": ""}, {"Idempotency-Key": "é"}, {"Idempotency-Key": "k" * 129}],
)
def test_invalid_idempotency_key_is_400(handlers, infra, headers):
    # GIVEN an unusable key WHEN a schedule is posted with it THEN 400, nothing created
    response = handlers.post({"at": in_minutes(5)}, headers=headers)
    assert_json_error(response, 400, "invalid_request")
    assert_nothing_created(infra)


def test_replay_recreates_a_schedule_whose_create_never_happened(handlers, infra):
    # GIVEN a keyed record whose schedule is missing (the first attempt died between
    # the put and CreateSchedule)
    body = {"at": in_minutes(5)}
    schedule_id = handlers.create(body, headers={"Idempotency-Key": "k-heal"})
    infra.delete_schedule(schedule_id)
    infra.forget_scheduled(schedule_id)

    # WHEN the client retries
    response = handlers.post(body, headers={"Idempotency-Key": "k-heal"})

    # THEN the schedule exists again, once, and the answer is the first one
    assert response.status == 201
    assert infra.schedule_names() == [schedule_id]


class _FailingScheduler:
    """A Scheduler client whose CreateSchedule fails like a throttled call."""

    def create_schedule(self, **kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            "CreateSchedule",
        )


def test_a_keyed_create_failure_keeps_the_record_for_the_retry(handlers, infra, monkeypatch):
    # GIVEN a Scheduler that refuses to create
    working = handlers.api.scheduler._client
    monkeypatch.setattr(handlers.api.scheduler, "_client", _FailingScheduler())
    body = {"at": in_minutes(5), "payload": PAYLOAD}

    # WHEN a keyed schedule is posted
    response = handlers.post(body, headers={"Idempotency-Key": "k-503"})

    # THEN 503, and the PENDING record stays for the retry with the key
    assert_json_error(response, 503, "service_unavailable")
    assert "same Idempotency-Key" in response.body["message"]
    (item,) = infra.items()
    assert item["status"] == "PENDING" and infra.schedule_names() == []

    # AND WHEN the retry meets a working Scheduler THEN it creates the schedule, 201
    monkeypatch.setattr(handlers.api.scheduler, "_client", working)
    retry = handlers.post(body, headers={"Idempotency-Key": "k-503"})
    assert retry.status == 201
    assert infra.schedule_names() == [retry.body["schedule_id"]] == [item["schedule_id"]]


def test_a_failing_retry_never_removes_the_record_of_a_created_schedule(
    handlers, infra, monkeypatch
):
    # GIVEN a keyed schedule created and answered 201
    body = {"at": in_minutes(10), "payload": PAYLOAD}
    key = {"Idempotency-Key": "k-created"}
    schedule_id = handlers.create(body, headers=key)
    working = handlers.api.scheduler._client
    monkeypatch.setattr(handlers.api.scheduler, "_client", _FailingScheduler())

    # WHEN a retry (the client lost the 201) comes while the Scheduler throttles
    # THEN it is answered the 201 without a create: the record says it is scheduled
    assert handlers.post(body, headers=key).status == 201

    # AND WHEN the record lacks that mark (the creating attempt died before writing it)
    # THEN the retry's own create is tried, fails, and is a 503 that removes nothing
    infra.forget_scheduled(schedule_id)
    assert_json_error(handlers.post(body, headers=key), 503, "service_unavailable")
    monkeypatch.setattr(handlers.api.scheduler, "_client", working)

    # THEN the record stays, and the schedule fires and runs its task
    assert infra.schedule_names() == [schedule_id]
    assert infra.item(schedule_id)["status"] == "PENDING"
    result = handlers.run_executor(handlers.fire(schedule_id))
    assert result["outcome"] == "completed", result


def test_a_keyed_retry_after_at_of_a_schedule_never_created_is_400_not_201(
    handlers, infra, monkeypatch
):
    # GIVEN a keyed POST for a minute ahead whose CreateSchedule is throttled: 503
    body = {"at": in_minutes(1), "payload": PAYLOAD}
    key = {"Idempotency-Key": "k-late-retry"}
    working = handlers.api.scheduler._client
    monkeypatch.setattr(handlers.api.scheduler, "_client", _FailingScheduler())
    assert_json_error(handlers.post(body, headers=key), 503, "service_unavailable")
    monkeypatch.setattr(handlers.api.scheduler, "_client", working)

    # WHEN the client retries with the key after its backoff, once `at` has passed
    handlers.clock.advance(90)
    retries = [handlers.post(body, headers=key) for _ in range(2)]

    # THEN no schedule exists and none will: each retry is 400 invalid_time (never the
    # stored 201), and the record reads FAILED not_scheduled
    assert infra.schedule_names() == []
    for retry in retries:
        assert_json_error(retry, 400, "invalid_time")
    (item,) = infra.items()
    assert item["status"] == "FAILED" and item["error"]["code"] == "not_scheduled"
    assert handlers.get(item["schedule_id"]).body["status"] == "FAILED"


def test_a_late_keyed_retry_of_a_schedule_that_exists_unmarked_answers_201_and_it_runs(
    handlers, infra
):
    # GIVEN a keyed schedule created and answered 201 whose record lacks the `scheduled`
    # mark (written before the mark existed, or its mark write failed)
    body = {"at": in_minutes(5), "payload": PAYLOAD}
    key = {"Idempotency-Key": "k-unmarked"}
    schedule_id = handlers.create(body, headers=key)
    infra.forget_scheduled(schedule_id)

    # WHEN its time has come, and before the schedule fires the client retries the POST
    handlers.clock.advance(5 * 60 + 1)
    retry = handlers.post(body, headers=key)

    # THEN the Scheduler still holds it: the retry is the first 201, and it then runs
    assert retry.status == 201, retry.body
    assert infra.item(schedule_id)["status"] == "PENDING"
    result = handlers.run_executor(handlers.fire(schedule_id))
    assert result["outcome"] == "completed", result


def test_a_late_keyed_retry_of_a_schedule_that_fired_unmarked_answers_201_and_it_runs(
    handlers, infra, monkeypatch
):
    # GIVEN a keyed schedule whose create succeeded but whose `scheduled` mark was not
    # written (the attempt answered 503); it fires, the Scheduler deletes it, and the
    # executor's first attempt fails (its lease given back: PENDING again)
    body = {"at": in_minutes(5), "payload": PAYLOAD}
    key = {"Idempotency-Key": "k-fired-unmarked"}
    schedule_id = handlers.create(body, headers=key)
    infra.forget_scheduled(schedule_id)
    handlers.clock.advance(5 * 60)
    event = handlers.fire(schedule_id)
    infra.delete_schedule(schedule_id)
    first_attempt_fails(handlers, monkeypatch, event)
    assert infra.item(schedule_id)["status"] == "PENDING"
    # (a retry racing that claim could not have given the record up either)
    assert not handlers.api.store.mark_not_scheduled(schedule_id, handlers.clock())

    # WHEN the client retries the POST with the key (the Scheduler no longer holds it)
    handlers.clock.advance(30)
    retry = handlers.post(body, headers=key)

    # THEN the claim proves the schedule existed: the retry is the first 201, not 400
    # "could not be created", and Lambda's retry of the event runs the task
    assert retry.status == 201, retry.body
    handlers.clock.advance(30)
    assert handlers.run_executor(event, request_id="event-1")["outcome"] == "completed"
    assert infra.item(schedule_id)["status"] == "DONE"


def test_a_create_ending_after_a_late_retry_gave_the_record_up_is_not_201(
    handlers, infra, monkeypatch
):
    # GIVEN a keyed POST for a second ahead whose CreateSchedule is slow (throttled and
    # retried by botocore): meanwhile `at` passes and a retry with the key comes
    body = {"at": in_minutes(1 / 60), "payload": PAYLOAD}
    key = {"Idempotency-Key": "k-slow"}
    schedules = handlers.api.scheduler
    create = schedules.create
    seen: dict[str, Any] = {}

    def slow_create(*args: Any, **kwargs: Any) -> bool:
        if "retry" not in seen:
            handlers.clock.advance(5)
            seen["retry"] = handlers.post(body, headers=key)
        return create(*args, **kwargs)

    monkeypatch.setattr(schedules, "create", slow_create)
    first = handlers.post(body, headers=key)

    # THEN the answers agree with the record: the retry found no schedule (400, the
    # record FAILED not_scheduled), and the first attempt answers no 201 for it
    assert_json_error(seen["retry"], 400, "invalid_time")
    (item,) = infra.items()
    assert item["status"] == "FAILED" and item["error"]["code"] == "not_scheduled"
    assert_json_error(first, 503, "service_unavailable")


@pytest.mark.parametrize("delete_fails", [False, True], ids=["deleted", "delete-fails"])
def test_a_create_ending_after_a_cancel_leaves_no_schedule_behind(
    handlers, infra, monkeypatch, delete_fails
):
    # GIVEN a keyed POST whose CreateSchedule is slow: before it lands, a DELETE of the
    # schedule (its id known from a concurrent retry's 201) cancels the record and finds
    # no schedule to delete
    body = {"at": in_minutes(5), "payload": PAYLOAD}
    key = {"Idempotency-Key": "k-cancelled-meanwhile"}
    schedules = handlers.api.scheduler
    create, delete = schedules.create, schedules.delete
    seen: dict[str, Any] = {}

    def slow_create(*args: Any, **kwargs: Any) -> bool:
        if "cancel" not in seen:
            (item,) = infra.items()
            seen["cancel"] = handlers.cancel(item["schedule_id"])
            if delete_fails:
                monkeypatch.setattr(schedules, "delete", _throttled_delete)
        return create(*args, **kwargs)

    monkeypatch.setattr(schedules, "create", slow_create)

    # WHEN the POST's create lands after the cancel
    first = handlers.post(body, headers=key)

    # THEN the POST answers its record's first answer, and the record stays CANCELLED
    assert seen["cancel"].status == 200 and seen["cancel"].body["status"] == "CANCELLED"
    assert first.status == 201, first.body
    schedule_id = first.body["schedule_id"]
    assert handlers.get(schedule_id).body["status"] == "CANCELLED"
    if not delete_fails:
        # AND the schedule it created is deleted again: nothing fires for the cancelled record
        assert infra.schedule_names() == []
        assert infra.item(schedule_id)["schedule_deleted_at"]
        return
    # AND if that delete fails, the record no longer says the schedule is deleted, and
    # a repeated DELETE deletes it
    assert infra.schedule_names() == [schedule_id]
    assert "schedule_deleted_at" not in infra.item(schedule_id)
    monkeypatch.setattr(schedules, "delete", delete)
    again = handlers.cancel(schedule_id)
    assert again.status == 200 and again.body["schedule_deleted_at"] is not None
    assert infra.schedule_names() == []


def test_a_repeated_delete_removes_a_schedule_the_race_left_behind(handlers, infra, monkeypatch):
    # GIVEN a keyed POST whose CreateSchedule is slow, and a DELETE that cancels the
    # record meanwhile and finds no schedule, its note that the schedule is deleted
    # still in flight; the POST's own delete of the schedule it then creates fails
    body = {"at": in_minutes(5), "payload": PAYLOAD}
    schedules, store = handlers.api.scheduler, handlers.api.store
    create, delete, record = schedules.create, schedules.delete, store.record_schedule_deleted
    in_flight: list[tuple[Any, ...]] = []

    def slow_create(*args: Any, **kwargs: Any) -> bool:
        if not in_flight:
            (item,) = infra.items()
            monkeypatch.setattr(store, "record_schedule_deleted", lambda *a: in_flight.append(a))
            assert handlers.cancel(item["schedule_id"]).status == 200
            monkeypatch.setattr(store, "record_schedule_deleted", record)
            monkeypatch.setattr(schedules, "delete", _throttled_delete)
        return create(*args, **kwargs)

    monkeypatch.setattr(schedules, "create", slow_create)
    first = handlers.post(body, headers={"Idempotency-Key": "k-note-lands-last"})
    schedule_id = first.body["schedule_id"]
    record(*in_flight[0])  # the DELETE's note lands last: the record says deleted
    monkeypatch.setattr(schedules, "delete", delete)
    assert infra.schedule_names() == [schedule_id]

    # WHEN the client repeats the DELETE THEN the schedule is gone, the record CANCELLED
    assert handlers.cancel(schedule_id).status == 200
    assert infra.schedule_names() == []
    assert handlers.get(schedule_id).body["status"] == "CANCELLED"


def _throttled_delete(name: str) -> bool:
    raise ClientError({"Error": {"Code": "ThrottlingException"}}, "DeleteSchedule")


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_a_create_that_fails_once_at_has_passed_is_400_not_503(handlers, infra, monkeypatch, keyed):
    # GIVEN a POST for a second ahead whose CreateSchedule fails after that second has
    # passed (a slow call, or the Scheduler refusing a time in the past)
    body = {"at": in_minutes(1 / 60), "payload": PAYLOAD}
    headers = {"Idempotency-Key": "k-too-late"} if keyed else {}

    def too_late(*args: Any, **kwargs: Any) -> bool:
        handlers.clock.advance(2)
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": "time in the past"}},
            "CreateSchedule",
        )

    monkeypatch.setattr(handlers.api.scheduler, "create", too_late)

    # WHEN it is posted THEN 400 invalid_time (a retry could not create it either), and
    # no schedule: an unkeyed record is gone, a keyed one reads FAILED not_scheduled
    assert_json_error(handlers.post(body, headers=headers), 400, "invalid_time")
    assert infra.schedule_names() == []
    if not keyed:
        assert infra.items() == []
        return
    (item,) = infra.items()
    assert (item["status"], item["error"]["code"]) == ("FAILED", "not_scheduled")
    # AND a retry with the key is answered the same
    assert_json_error(handlers.post(body, headers=headers), 400, "invalid_time")


def test_create_failure_is_503_and_leaves_no_record(handlers, infra, monkeypatch):
    # GIVEN a Scheduler that refuses to create
    monkeypatch.setattr(handlers.api.scheduler, "_client", _FailingScheduler())

    # WHEN a schedule is posted
    response = handlers.post({"at": in_minutes(5)})

    # THEN 503 with Retry-After, and the record is gone again
    assert_json_error(response, 503, "service_unavailable")
    assert response.headers["retry-after"] == "2"
    assert_nothing_created(infra)
