"""One-off schedules end to end: the API, the Scheduler, the executor's destinations and
the cleanup as wired (stage time runs fast locally, so a schedule due in 90 s fires
in about a second)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from localstage.target import Target

from patterns.one_off_schedules.scenarios import (
    FIRE_TIMEOUT,
    LEAD,
    STACK,
    at_time,
    create,
    remaining,
    view,
    wait_until_finished,
)

#: The issue's proof: a hundred schedules a couple of seconds apart.
MANY = 100


@pytest.mark.load
def test_a_hundred_schedules_each_fire_once_and_none_remains(target: Target) -> None:
    # GIVEN 100 schedules due from 90 s ahead, 2 s apart
    ids = [
        create(target, at=at_time(LEAD + timedelta(seconds=2 * index)), payload={"i": index}).body[
            "schedule_id"
        ]
        for index in range(MANY)
    ]

    # WHEN they have all come due and run
    results = [wait_until_finished(target, schedule_id) for schedule_id in ids]

    # THEN each ran exactly once with its own payload, and no schedule is left
    assert [body["status"] for body in results] == ["DONE"] * MANY
    assert [body["attempts"] for body in results] == [1] * MANY
    assert all(body["schedule_deleted_at"] for body in results)
    target.wait_for("no schedule left", lambda: not remaining(target, ids), timeout=FIRE_TIMEOUT)


def test_a_failing_task_ends_failed_with_its_schedule_gone_and_its_event_recorded(
    target: Target,
) -> None:
    # GIVEN a schedule whose task fails on every attempt
    schedule_id = create(target, at=at_time(LEAD), payload={"task": "doomed"}, outcome="fail").body[
        "schedule_id"
    ]

    # WHEN it fires and Lambda has retried it twice
    body = wait_until_finished(target, schedule_id, timeout=FIRE_TIMEOUT * 2)

    # THEN it is FAILED, its schedule is gone and the failure record holds its event
    assert body["status"] == "FAILED"
    assert body["error"]["code"] == "task_failed"
    assert not remaining(target, [schedule_id])
    item = target.get_item(target.output(STACK, "ScheduleTableName"), {"schedule_id": schedule_id})
    assert item is not None
    failure = item["failure"]
    assert failure["condition"] == "RetriesExhausted"
    assert int(failure["approximate_invoke_count"]) == 3
    event = json.loads(failure["event"])
    assert event["schedule_id"] == schedule_id
    assert event["payload"] == {"task": "doomed"}
    assert event["attempt_number"] == "1"


def test_a_schedule_cancelled_before_its_time_is_gone_and_stays_cancelled(
    target: Target,
) -> None:
    # GIVEN a schedule an hour ahead
    schedule_id = create(target, at=at_time(timedelta(hours=1))).body["schedule_id"]

    # WHEN it is cancelled, twice
    first = target.call_api(target.output(STACK, "ApiUrl"), "DELETE", f"schedules/{schedule_id}")
    second = target.call_api(target.output(STACK, "ApiUrl"), "DELETE", f"schedules/{schedule_id}")

    # THEN it is CANCELLED (both 200) and its schedule no longer exists
    assert (first.status, second.status) == (200, 200)
    assert first.body["status"] == "CANCELLED"
    assert not remaining(target, [schedule_id])
    assert view(target, schedule_id)["status"] == "CANCELLED"


def test_a_repeated_create_with_the_same_key_makes_one_schedule(target: Target) -> None:
    # GIVEN an Idempotency-Key
    key = f"e2e-{uuid.uuid4()}"
    at = at_time(timedelta(hours=1))

    # WHEN the same request is sent twice
    first = create(target, at=at, payload={"n": 1}, key=key)
    second = create(target, at=at, payload={"n": 1}, key=key)

    # THEN the second gets the first answer (its schedule): one schedule exists
    assert (first.status, second.status) == (201, 201)
    schedule_id = first.body["schedule_id"]
    assert second.body["schedule_id"] == schedule_id
    assert remaining(target, [schedule_id]) == [schedule_id]
    target.call_api(target.output(STACK, "ApiUrl"), "DELETE", f"schedules/{schedule_id}")
