"""Schedule records past their TTL read as absent, although DynamoDB still has them.

DynamoDB deletes expired items typically within two days and reads return them until
then (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
moto never deletes them, so a record past its ``expires_at`` on the fake clock is what
AWS shows within that delay.
"""

from __future__ import annotations

from typing import Any

from tests.support.events import assert_json_error
from tests.unit.one_off_schedules.conftest import in_minutes

KEY = {"Idempotency-Key": "k-ttl"}


def _to_expiry(handlers: Any, infra: Any, schedule_id: str) -> None:
    """Move the fake clock to the record's ``expires_at`` (expired from that second on)."""
    expires_at = int(infra.item(schedule_id)["expires_at"])
    handlers.clock.advance_to(expires_at)


def test_get_of_a_schedule_past_its_ttl_answers_404(handlers, infra):
    # GIVEN a schedule that ran, at its record's expires_at (record still present)
    schedule_id = handlers.create({"at": in_minutes(1)})
    handlers.deliver(handlers.fire(schedule_id))
    _to_expiry(handlers, infra, schedule_id)
    assert infra.item(schedule_id)["status"] == "DONE"

    # WHEN the client asks for it
    response = handlers.get(schedule_id)

    # THEN 404, as after the deletion
    assert_json_error(response, 404, "not_found")


def test_post_with_a_key_whose_record_expired_creates_a_new_schedule(handlers, infra):
    # GIVEN a keyed schedule that ran, and its record now past its TTL
    schedule_id = handlers.create({"at": in_minutes(1)}, headers=KEY)
    handlers.deliver(handlers.fire(schedule_id))
    _to_expiry(handlers, infra, schedule_id)

    # WHEN the client uses the key again for a schedule in the (new) future (the old
    # body, whose time has passed, would now be refused as a new request: 400)
    at = in_minutes(5, start=handlers.clock.now)
    response = handlers.post({"at": at}, headers=KEY)

    # THEN a new schedule is created under the same id (not 422 for a reused key), and
    # it is in the Scheduler
    assert response.status == 201, response.body
    assert response.body["schedule_id"] == schedule_id
    assert response.body["status"] == "PENDING"
    assert infra.item(schedule_id)["status"] == "PENDING"
    assert infra.schedule_names() == [schedule_id]


def test_executor_does_not_run_a_schedule_past_its_ttl(handlers, infra):
    # GIVEN a PENDING schedule whose delivery arrives only after its record expired
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = handlers.fire(schedule_id)
    _to_expiry(handlers, infra, schedule_id)
    before = infra.item(schedule_id)

    # WHEN the executor gets it
    response = handlers.run_executor(event)

    # THEN it finds no record and runs nothing
    assert response["outcome"] == "missing"
    assert infra.item(schedule_id) == before


def test_cancel_of_a_schedule_past_its_ttl_answers_404_and_writes_nothing(handlers, infra):
    # GIVEN a PENDING schedule record past its TTL (never delivered)
    schedule_id = handlers.create({"at": in_minutes(1)})
    _to_expiry(handlers, infra, schedule_id)
    before = infra.item(schedule_id)

    # WHEN the client cancels it
    response = handlers.cancel(schedule_id)

    # THEN 404, and the expired record is not turned CANCELLED
    assert_json_error(response, 404, "not_found")
    assert infra.item(schedule_id) == before
