"""schedule_api.handler: GET and DELETE /schedules/{id} against moto."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from handler_kit.status_transitions import attempts_of

from tests.support.events import assert_json_error
from tests.unit.one_off_schedules.conftest import (
    PAYLOAD,
    STAGE,
    UNDELIVERED_AFTER_SECONDS,
    first_attempt_fails,
    in_minutes,
    item_event,
)

# --------------------------------------------------------------------------- GET


def test_get_reports_pending_then_done_with_when(handlers, infra):
    # GIVEN a created schedule
    schedule_id = handlers.create({"at": in_minutes(2), "payload": PAYLOAD})
    assert handlers.get(schedule_id).body["status"] == "PENDING"

    # WHEN it fires and runs
    handlers.deliver(handlers.fire(schedule_id))

    # THEN GET reports DONE, when it fired and finished, and that the schedule is gone
    response = handlers.get(schedule_id)
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.body
    assert body["status"] == "DONE"
    assert body["fired_at"] == body["completed_at"] == "2025-03-14T09:28:53.000Z"
    assert body["schedule_deleted_at"] == "2025-03-14T09:28:53.000Z"
    assert body["attempts"] == 1
    assert body["result"]["payload_bytes"] == len(json.dumps(PAYLOAD, separators=(",", ":")))
    assert body["links"]["self"] == f"/{STAGE}/schedules/{schedule_id}"


def test_get_unknown_is_404_and_malformed_id_is_400(handlers):
    # GIVEN no schedules WHEN an unknown id and a malformed one are read THEN 404 and 400
    assert_json_error(handlers.get(str(uuid.uuid4())), 404, "not_found")
    assert_json_error(handlers.get("not-a-uuid"), 400, "invalid_request")


def test_an_id_spelled_in_upper_case_links_to_its_canonical_form(handlers):
    # GIVEN a schedule, and its id as a client may spell it (UUIDs ignore case)
    schedule_id = handlers.create({"at": in_minutes(2), "payload": PAYLOAD})
    spelled = schedule_id.upper()
    # WHEN it is read and cancelled under that spelling
    read, cancelled = handlers.get(spelled), handlers.cancel(spelled)
    # THEN both answer for the schedule, and link to the one location POST gave
    canonical = f"/{STAGE}/schedules/{schedule_id}"
    for response in (read, cancelled):
        assert response.status == 200
        assert response.body["schedule_id"] == schedule_id
        assert response.body["links"]["self"] == canonical


def test_unknown_route_is_json_404(handlers):
    # GIVEN a method the API does not route WHEN it is called THEN a JSON 404
    response = handlers.call_api(item_event("PUT", str(uuid.uuid4())))
    assert_json_error(response, 404, "not_found")


# --------------------------------------------------------------------------- DELETE


def test_cancel_before_firing_deletes_the_schedule_and_is_repeatable(handlers, infra):
    # GIVEN a pending schedule
    schedule_id = handlers.create({"at": in_minutes(10)})

    # WHEN the client cancels it, twice
    first = handlers.cancel(schedule_id)
    handlers.clock.advance(5)
    second = handlers.cancel(schedule_id)

    # THEN both answer 200 CANCELLED with the same cancellation time
    assert (first.status, second.status) == (200, 200)
    assert first.body["status"] == second.body["status"] == "CANCELLED"
    assert first.body["cancelled_at"] == second.body["cancelled_at"] == "2025-03-14T09:26:53.589Z"
    # AND the schedule is gone, the record says so
    assert infra.schedule_names() == []
    assert infra.item(schedule_id)["schedule_deleted_at"] == "2025-03-14T09:26:53.589Z"


def test_cancel_with_a_newline_after_the_id_is_400_and_cancels_nothing(handlers, infra):
    # GIVEN a pending schedule
    schedule_id = handlers.create({"at": in_minutes(10)})
    before = infra.item(schedule_id)

    # WHEN a DELETE names it with a newline after it (%0A, decoded by API Gateway)
    response = handlers.cancel(f"{schedule_id}\n")

    # THEN 400, and the schedule and its record are as they were
    assert_json_error(response, 400, "invalid_request")
    assert infra.schedule_names() == [schedule_id]
    assert infra.item(schedule_id) == before


def test_cancelled_schedule_that_fires_anyway_does_nothing(handlers, infra):
    # GIVEN a schedule that fired while it was being cancelled (the event was already
    # on its way when the schedule was deleted)
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = handlers.fire(schedule_id)
    assert handlers.cancel(schedule_id).status == 200

    # WHEN the event reaches the executor and its destination
    delivery = handlers.deliver(event)

    # THEN the task is not run and the record stays CANCELLED
    assert delivery.response["outcome"] == "duplicate"
    item = infra.item(schedule_id)
    assert item["status"] == "CANCELLED" and attempts_of(item) == 0
    assert "result" not in item


@pytest.mark.parametrize("outcome", ["succeed", "fail"])
def test_cancel_after_the_run_is_409(handlers, infra, outcome):
    # GIVEN a schedule that already ran (to DONE or FAILED)
    schedule_id = handlers.create({"at": in_minutes(1), "outcome": outcome})
    handlers.deliver(handlers.fire(schedule_id))
    before = infra.item(schedule_id)

    # WHEN the client tries to cancel it
    response = handlers.cancel(schedule_id)

    # THEN 409 and the record is unchanged
    assert_json_error(response, 409, "not_cancellable")
    assert infra.item(schedule_id) == before


def test_cancel_between_a_failed_attempt_and_its_retry_is_409_and_the_retry_runs(
    handlers, infra, monkeypatch
):
    # GIVEN a schedule that fired, whose first attempt failed and gave the record back
    # (PENDING again, fired_at set) for Lambda's retry of the event
    schedule_id = handlers.create({"at": in_minutes(1), "payload": PAYLOAD})
    event = handlers.fire(schedule_id)
    first_attempt_fails(handlers, monkeypatch, event)
    before = infra.item(schedule_id)
    assert before["status"] == "PENDING" and "fired_at" in before

    # WHEN the client tries to cancel it
    response = handlers.cancel(schedule_id)

    # THEN 409: an attempt ran already, and cancelling would leave it unrecorded
    assert_json_error(response, 409, "not_cancellable")
    assert "has fired" in response.body["message"]
    assert infra.item(schedule_id) == before
    # AND Lambda's retry runs the task to its end
    assert handlers.run_executor(event, request_id="event-1")["outcome"] == "completed"
    assert infra.item(schedule_id)["status"] == "DONE"


def test_cancel_unknown_is_404(handlers, infra):
    # GIVEN no schedules WHEN an unknown one is cancelled THEN 404 and nothing is written
    assert_json_error(handlers.cancel(str(uuid.uuid4())), 404, "not_found")
    assert infra.items() == []


def test_pending_record_past_both_retry_windows_reads_failed_not_delivered(handlers, infra):
    # GIVEN a schedule whose event never reached the executor (the Scheduler gave up
    # and put it in its DLQ; ActionAfterCompletion deleted the schedule)
    schedule_id = handlers.create({"at": in_minutes(1)})
    infra.delete_schedule(schedule_id)

    # WHEN the client polls just before and then after the delivery deadline
    handlers.clock.advance(60 + UNDELIVERED_AFTER_SECONDS - 1)
    before = handlers.get(schedule_id).body
    handlers.clock.advance(1)
    after = handlers.get(schedule_id).body

    # THEN it is PENDING until then, FAILED not_delivered afterwards (read only)
    assert before["status"] == "PENDING"
    assert after["status"] == "FAILED"
    assert after["error"]["code"] == "not_delivered"
    assert infra.item(schedule_id)["status"] == "PENDING"


def test_running_record_whose_last_attempt_died_reads_failed_not_completed(handlers, infra):
    # GIVEN a schedule whose last attempt claimed it and died holding its lease, and
    # whose failure record never got through the cleanup (its failure queue holds it)
    schedule_id = handlers.create({"at": in_minutes(1)})
    handlers.clock.advance(60)
    store = handlers.roles["executor"].store
    lease_end = handlers.clock.epoch + 30
    claimed = store.claim(
        schedule_id,
        lease_owner="last-attempt/0a1b2c",
        lease_expires_epoch=lease_end,
        now=handlers.clock.now,
        execution_id="last",
    )
    assert claimed is not None

    # WHEN the client polls while its lease lives, just before the delivery deadline,
    # and after it
    during = handlers.get(schedule_id).body
    handlers.clock.advance(UNDELIVERED_AFTER_SECONDS - 1)
    before = handlers.get(schedule_id).body
    handlers.clock.advance(1)
    after = handlers.get(schedule_id).body

    # THEN it is RUNNING until no retry can come any more, then FAILED not_completed
    # (read only: the record is not written)
    assert during["status"] == before["status"] == "RUNNING"
    assert after["status"] == "FAILED"
    assert after["error"]["code"] == "not_completed"
    assert infra.item(schedule_id)["status"] == "RUNNING"
    # AND it can no longer be cancelled
    assert_json_error(handlers.cancel(schedule_id), 409, "not_cancellable")


def test_a_running_record_whose_lease_ends_at_the_deadline_still_reads_running(handlers, infra):
    # GIVEN a schedule claimed by an attempt whose lease lasts until the delivery deadline
    schedule_id = handlers.create({"at": in_minutes(1)})
    handlers.clock.advance(60)
    claimed = handlers.roles["executor"].store.claim(
        schedule_id,
        lease_owner="slow-attempt/0a1b2c",
        lease_expires_epoch=handlers.clock.epoch + UNDELIVERED_AFTER_SECONDS,
        now=handlers.clock.now,
        execution_id="slow",
    )
    assert claimed is not None

    # WHEN the client polls at the deadline, in the lease's last second
    handlers.clock.advance(UNDELIVERED_AFTER_SECONDS)
    body = handlers.get(schedule_id).body

    # THEN it is RUNNING: the lease still lives (no other delivery may take it over)
    assert body["status"] == "RUNNING" and "error" not in body


def test_cancel_of_a_schedule_that_reads_failed_not_delivered_is_409(handlers, infra):
    # GIVEN a schedule whose event never reached the executor: GET reads it FAILED
    schedule_id = handlers.create({"at": in_minutes(1)})
    infra.delete_schedule(schedule_id)
    handlers.clock.advance(60 + UNDELIVERED_AFTER_SECONDS)
    assert handlers.get(schedule_id).body["status"] == "FAILED"
    before = infra.item(schedule_id)

    # WHEN the client tries to cancel it
    response = handlers.cancel(schedule_id)

    # THEN 409 as for any FAILED schedule, the record is unchanged and still reads FAILED
    assert_json_error(response, 409, "not_cancellable")
    assert infra.item(schedule_id) == before
    assert handlers.get(schedule_id).body["error"]["code"] == "not_delivered"


def test_cancel_just_before_the_delivery_deadline_still_cancels(handlers, infra):
    # GIVEN a schedule one second before it would read FAILED not_delivered
    schedule_id = handlers.create({"at": in_minutes(1)})
    handlers.clock.advance(60 + UNDELIVERED_AFTER_SECONDS - 1)

    # WHEN the client cancels it THEN it is cancelled, as a PENDING schedule is
    response = handlers.cancel(schedule_id)
    assert response.status == 200 and response.body["status"] == "CANCELLED"


class _SchedulerDeleteFails:
    """A Scheduler client whose DeleteSchedule fails like a throttled call."""

    def delete_schedule(self, **kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            "DeleteSchedule",
        )


def test_cancel_stands_when_the_schedule_cannot_be_deleted_yet(handlers, infra, monkeypatch):
    # GIVEN a pending schedule and a Scheduler that throttles DeleteSchedule
    schedule_id = handlers.create({"at": in_minutes(10)})
    real_client = handlers.api.scheduler._client
    monkeypatch.setattr(handlers.api.scheduler, "_client", _SchedulerDeleteFails())

    # WHEN the client cancels
    response = handlers.cancel(schedule_id)

    # THEN it is cancelled (200), the schedule still exists and is not marked deleted
    assert response.status == 200 and response.body["status"] == "CANCELLED"
    assert response.body["schedule_deleted_at"] is None
    assert infra.schedule_names() == [schedule_id]
    # AND a repeated DELETE, once the Scheduler answers, deletes it
    monkeypatch.setattr(handlers.api.scheduler, "_client", real_client)
    again = handlers.cancel(schedule_id)
    assert again.status == 200 and again.body["schedule_deleted_at"] is not None
    assert infra.schedule_names() == []
