"""schedule_executor.handler and schedule_cleanup.handler: a schedule fires, runs and
is deleted. Events are the real shapes: the schedule's own input after the Scheduler's
substitutions, and Lambda's destination records."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest
from handler_kit.status_transitions import attempts_of

from tests.support import events
from tests.support.aws_faults import first_reply_lost
from tests.unit.one_off_schedules.conftest import (
    EXECUTOR_ARN,
    EXECUTOR_RETRY_ATTEMPTS,
    GROUP_NAME,
    SCHEDULER_ROLE_ARN,
    in_minutes,
)

PAYLOAD = {"user": "u-42", "reminder": "renew", "ratio": 0.75}


def test_happy_path_runs_once_records_done_and_leaves_no_schedule(handlers, infra):
    # GIVEN a schedule due in two minutes
    schedule_id = handlers.create({"at": in_minutes(2), "payload": PAYLOAD})

    # WHEN it fires: the executor gets the substituted input, then the success
    # destination hands Lambda's record to the cleanup
    event = handlers.fire(schedule_id, execution_id="d32c5kddcf5bb8c3")
    assert event["schedule_arn"].endswith(f":schedule/{GROUP_NAME}/{schedule_id}")
    assert event["scheduled_time"] == "2025-03-14T09:28:53Z"
    assert event["attempt_number"] == "1"
    delivery = handlers.deliver(event)

    # THEN the executor ran once and succeeded
    assert delivery.attempts == 1 and delivery.error is None
    assert delivery.response == {
        "schedule_id": schedule_id,
        "execution_id": "d32c5kddcf5bb8c3",
        "outcome": "completed",
    }
    # AND the record is DONE with the task's result
    item = infra.item(schedule_id)
    assert item["status"] == "DONE"
    assert attempts_of(item) == 1
    assert item["execution_id"] == "d32c5kddcf5bb8c3"
    assert item["result"]["scheduled_time"] == "2025-03-14T09:28:53.000Z"
    assert "lease_owner" not in item and "last_error" not in item
    # AND no schedule is left in the group
    assert infra.schedule_names() == []
    assert item["schedule_deleted_at"] == "2025-03-14T09:28:53.000Z"


def test_a_claim_whose_reply_was_lost_is_kept_and_the_task_runs(handlers, infra):
    # GIVEN a schedule due in two minutes, and DynamoDB applying the executor's claim but
    # losing the reply, so the SDK sends the same request again
    schedule_id = handlers.create({"at": in_minutes(2), "payload": PAYLOAD})
    client = handlers.roles["executor"].store._client
    claims = lambda params: params["UpdateExpression"].startswith("SET #status = :running")  # noqa: E731

    # WHEN it fires
    with first_reply_lost(client, "UpdateItem", claims) as lost:
        delivery = handlers.deliver(handlers.fire(schedule_id))

    # THEN the retry found the executor's own claim and kept it (the owner is unique per
    # call), not another delivery's: the task ran once and the record is DONE (read as
    # taken, it answered "in progress", the cleanup deleted the schedule and the record
    # said RUNNING for good)
    assert lost
    assert delivery.attempts == 1 and delivery.response["outcome"] == "completed"
    item = infra.item(schedule_id)
    assert item["status"] == "DONE" and "lease_owner" not in item
    assert infra.schedule_names() == []
    # AND the SDK's retry of the claim is not counted as a second attempt
    assert attempts_of(item) == 1
    assert handlers.get(schedule_id).body["attempts"] == 1


def test_a_completion_whose_reply_was_lost_is_not_reported_discarded(handlers, infra):
    # GIVEN DynamoDB applying the executor's move to DONE but losing the reply, so the
    # SDK sends it again and the retry fails its condition on the DONE it repeats
    schedule_id = handlers.create({"at": in_minutes(2), "payload": PAYLOAD})
    client = handlers.roles["executor"].store._client
    completes = lambda params: "completed_at" in params["UpdateExpression"]  # noqa: E731

    # WHEN it fires
    with first_reply_lost(client, "UpdateItem", completes) as lost:
        delivery = handlers.deliver(handlers.fire(schedule_id))

    # THEN the executor knows its own write: completed, not "result discarded"
    assert lost
    assert delivery.response["outcome"] == "completed"
    assert infra.item(schedule_id)["status"] == "DONE"


def test_failing_task_ends_failed_with_schedule_deleted_and_event_recorded(handlers, infra):
    # GIVEN a schedule whose task fails every attempt
    schedule_id = handlers.create({"at": in_minutes(1), "payload": PAYLOAD, "outcome": "fail"})
    event = handlers.fire(schedule_id)

    # WHEN Lambda runs the executor (first try plus its retries) and gives up
    delivery = handlers.invoke_async(event)

    # THEN every attempt failed and released the record for the next one
    assert delivery.attempts == EXECUTOR_RETRY_ATTEMPTS + 1
    assert type(delivery.error).__name__ == "TaskFailedError"
    between = infra.item(schedule_id)
    assert between["status"] == "PENDING"
    assert attempts_of(between) == EXECUTOR_RETRY_ATTEMPTS + 1
    assert between["last_error"]["code"] == "task_failed"
    assert delivery.record["requestContext"]["condition"] == "RetriesExhausted"

    # WHEN the on-failure destination invokes the cleanup
    result = handlers.run_cleanup(delivery.record)

    # THEN the run is FAILED, with the error and the failed event in the failure record
    assert result == {"outcome": "deleted", "recorded_failure": True}
    item = infra.item(schedule_id)
    assert item["status"] == "FAILED"
    assert item["error"]["code"] == "task_failed"
    assert item["error"]["type"] == "TaskFailedError"
    failure = item["failure"]
    assert failure["condition"] == "RetriesExhausted"
    assert failure["approximate_invoke_count"] == EXECUTOR_RETRY_ATTEMPTS + 1
    assert failure["request_id"] == delivery.request_id
    assert json.loads(failure["event"]) == event
    # AND the schedule is gone
    assert infra.schedule_names() == []
    # AND GET shows FAILED and when
    body = handlers.get(schedule_id).body
    assert body["status"] == "FAILED"
    assert body["failed_at"] == item["failed_at"]
    assert body["error"]["message"].startswith(f"task of schedule {schedule_id} failed")


@pytest.mark.parametrize(
    ("condition", "response", "expected"),
    [
        # An event that expired before any attempt: no response, Lambda's condition
        (
            "EventAgeExceeded",
            None,
            ("EventAgeExceeded", "the executor gave up: EventAgeExceeded", ""),
        ),
        # The runtime's error object, its message capped at 1,000 characters
        (
            "RetriesExhausted",
            events.lambda_error_payload("RuntimeError", "x" * 1500),
            ("RuntimeError", "x" * 1000, "Unhandled"),
        ),
    ],
    ids=["event-expired", "long-error"],
)
def test_a_failure_record_stores_what_lambda_reported(
    handlers, infra, condition: str, response: Any, expected: tuple[str, str, str]
):
    # GIVEN a fired schedule whose event Lambda gave up on
    schedule_id = handlers.create({"at": in_minutes(1)})
    record = events.lambda_destination_record(
        handlers.fire(schedule_id),
        function_name="ScheduleExecutor",
        condition=condition,
        response_payload=response,
    )

    # WHEN the on-failure destination invokes the cleanup
    result = handlers.run_cleanup(record)

    # THEN FAILED with the error type, message and function error Lambda reported
    assert result == {"outcome": "deleted", "recorded_failure": True}
    item = infra.item(schedule_id)
    failure = item["failure"]
    assert (item["error"]["type"], item["error"]["message"], failure["function_error"]) == expected
    assert (failure["error_type"], failure["error_message"]) == expected[:2]


def test_a_failure_record_naming_the_schedule_in_capitals_fails_its_record(handlers, infra):
    # GIVEN an event that spells the schedule id in capitals (the executor takes a UUID
    # in any case and runs the lower-case record), and Lambda's failure record of it
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = {**handlers.fire(schedule_id), "schedule_id": schedule_id.upper()}
    record = events.lambda_destination_record(
        event, function_name="ScheduleExecutor", condition="RetriesExhausted"
    )

    # WHEN the cleanup gets it THEN the schedule's own record is FAILED
    assert handlers.run_cleanup(record)["recorded_failure"] is True
    assert infra.item(schedule_id)["status"] == "FAILED"


def test_the_executor_s_lease_lasts_until_its_invocation_can_end(handlers, infra, monkeypatch):
    # GIVEN a fired schedule, and an executor invocation with 30.5 s left
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = handlers.fire(schedule_id)
    leases: list[int] = []

    def task(invocation: Any) -> dict[str, Any]:
        leases.append(infra.item(schedule_id)["lease_expires_epoch"])
        return {}

    monkeypatch.setattr(handlers.roles["executor"].schedule_runs, "simulate_task", task)

    # WHEN it runs the task
    handlers.run_executor(event, remaining_ms=30_500)

    # THEN the lease it held meanwhile ends at the invocation's end rounded up to the
    # second, so no other delivery can take the schedule over while it may still work
    assert leases == [handlers.clock.epoch + 31]


def _held_by_another_delivery(handlers, schedule_id: str, *, seconds: int) -> tuple[Any, str]:
    """A second delivery of the event (a duplicate) claims the schedule for ``seconds``."""
    store, owner = handlers.roles["executor"].store, "second-delivery/0a1b2c"
    expires = math.ceil(handlers.clock.now.timestamp()) + seconds
    claimed = store.claim(
        schedule_id,
        lease_owner=owner,
        lease_expires_epoch=expires,
        now=handlers.clock.now,
        execution_id="second",
    )
    assert claimed is not None
    return store, owner


@pytest.mark.parametrize("holder", ["completes", "dies"])
def test_a_failure_record_waits_for_another_delivery_s_live_lease(handlers, infra, holder):
    # GIVEN a delivery whose every attempt failed, and a second delivery of the same
    # event holding the schedule under a live lease when the failure record arrives
    schedule_id = handlers.create({"at": in_minutes(1), "payload": PAYLOAD, "outcome": "fail"})
    failed = handlers.invoke_async(handlers.fire(schedule_id))
    store, owner = _held_by_another_delivery(handlers, schedule_id, seconds=30)

    # WHEN the failure record reaches the cleanup
    reads: list[str] = []
    handlers.roles["cleanup"].store._client.meta.events.register(
        "before-call.dynamodb.GetItem", lambda **_: reads.append("GetItem")
    )
    with pytest.raises(handlers.models.ScheduleStillRunningError):
        handlers.run_cleanup(failed.record)

    # THEN the record stays the live delivery's (before, it was marked FAILED, and that
    # delivery's successful run was then discarded), learnt from the failed update itself:
    # the cleanup's role may update the table, not read it
    assert reads == []
    assert infra.item(schedule_id)["status"] == "RUNNING"
    # WHEN that delivery completes, or dies holding the lease, and Lambda retries the
    # cleanup a minute later
    if holder == "completes":
        assert store.complete(schedule_id, lease_owner=owner, result={}, now=handlers.clock.now)
    handlers.clock.advance(60)
    result = handlers.run_cleanup(failed.record)
    # THEN the run ends as that delivery left it: DONE, or FAILED once its lease is over
    expected = ("DONE", False) if holder == "completes" else ("FAILED", True)
    assert (infra.item(schedule_id)["status"], result["recorded_failure"]) == expected


def test_event_that_expired_in_lambdas_queue_ends_failed(handlers, infra):
    # GIVEN a fired schedule whose event aged out before the executor ever ran
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = handlers.fire(schedule_id)
    record = events.lambda_destination_record(
        event,
        function_name="ScheduleExecutor",
        condition="EventAgeExceeded",
        approximate_invoke_count=0,
    )

    # WHEN the on-failure destination invokes the cleanup
    result = handlers.run_cleanup(record)

    # THEN the run is FAILED (never run) and the schedule is deleted
    assert result == {"outcome": "deleted", "recorded_failure": True}
    item = infra.item(schedule_id)
    assert item["status"] == "FAILED" and attempts_of(item) == 0
    assert item["error"]["type"] == "EventAgeExceeded"
    assert infra.schedule_names() == []


def test_schedule_already_deleted_by_action_after_completion_counts_as_done(handlers, infra):
    # GIVEN a schedule that ran, and that ActionAfterCompletion deleted first
    schedule_id = handlers.create({"at": in_minutes(1)})
    delivery = handlers.invoke_async(handlers.fire(schedule_id))
    infra.delete_schedule(schedule_id)

    # WHEN the success destination's cleanup runs
    result = handlers.run_cleanup(delivery.record)

    # THEN it succeeds: nothing to delete, the record is DONE and notes the deletion
    assert result == {"outcome": "already_gone", "recorded_failure": False}
    item = infra.item(schedule_id)
    assert item["status"] == "DONE"
    assert item["schedule_deleted_at"] == "2025-03-14T09:27:53.000Z"


def test_duplicate_executor_delivery_changes_nothing(handlers, infra):
    # GIVEN a schedule that already ran to DONE and was cleaned up
    schedule_id = handlers.create({"at": in_minutes(1), "payload": PAYLOAD})
    event = handlers.fire(schedule_id)
    handlers.deliver(event)
    before = infra.item(schedule_id)

    # WHEN Lambda delivers the same event again (at-least-once), later
    handlers.clock.advance(600)
    duplicate = handlers.deliver(event)

    # THEN the task is not run again and the record is unchanged
    assert duplicate.response["outcome"] == "duplicate"
    assert infra.item(schedule_id) == before
    assert infra.schedule_names() == []


def test_second_scheduler_attempt_after_success_changes_nothing(handlers, infra):
    # GIVEN a schedule that ran to DONE
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = handlers.fire(schedule_id)
    handlers.invoke_async(event)
    before = infra.item(schedule_id)

    # WHEN the Scheduler delivers again (its own retry: a new execution id and attempt)
    retry = dict(event, execution_id="e2", attempt_number="2")
    response = handlers.run_executor(retry)

    # THEN nothing is run again
    assert response["outcome"] == "duplicate"
    assert infra.item(schedule_id) == before


def test_delivery_while_another_holds_the_lease_does_nothing(handlers, infra):
    # GIVEN an attempt that has claimed the schedule and is still working
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = handlers.fire(schedule_id)
    store = handlers.executor.store
    claimed = store.claim(
        schedule_id,
        lease_owner="first-attempt",
        lease_expires_epoch=handlers.clock.epoch + 30,
        now=handlers.clock(),
        execution_id=event["execution_id"],
    )
    assert claimed is not None

    # WHEN a duplicate of the event arrives meanwhile
    response = handlers.run_executor(event)

    # THEN it does not run the task and does not touch the record
    assert response["outcome"] == "in_progress"
    item = infra.item(schedule_id)
    assert item["status"] == "RUNNING" and item["lease_owner"] == "first-attempt"
    assert attempts_of(item) == 1


def test_attempt_that_died_is_taken_over_after_its_lease(handlers, infra):
    # GIVEN an attempt that claimed the schedule and then timed out (no release)
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = handlers.fire(schedule_id)
    handlers.executor.store.claim(
        schedule_id,
        lease_owner="dead-attempt",
        lease_expires_epoch=handlers.clock.epoch + 30,
        now=handlers.clock(),
        execution_id=event["execution_id"],
    )

    # WHEN Lambda retries a minute later
    handlers.clock.advance(60)
    response = handlers.run_executor(event)

    # THEN the retry takes over and completes
    assert response["outcome"] == "completed"
    item = infra.item(schedule_id)
    assert item["status"] == "DONE" and attempts_of(item) == 2


def test_duplicate_cleanup_of_a_failure_changes_nothing(handlers, infra):
    # GIVEN a failed run that was already cleaned up and recorded
    schedule_id = handlers.create({"at": in_minutes(1), "outcome": "fail"})
    delivery = handlers.deliver(handlers.fire(schedule_id))
    before = infra.item(schedule_id)

    # WHEN the failure destination delivers its record again
    handlers.clock.advance(60)
    result = handlers.run_cleanup(delivery.record)

    # THEN it reports the schedule already gone and changes nothing
    assert result == {"outcome": "already_gone", "recorded_failure": False}
    assert infra.item(schedule_id) == before


def test_late_failure_record_never_overrides_done(handlers, infra):
    # GIVEN a run that is DONE
    schedule_id = handlers.create({"at": in_minutes(1)})
    event = handlers.fire(schedule_id)
    handlers.deliver(event)
    before = infra.item(schedule_id)

    # WHEN a failure record for another delivery of the same event arrives
    record = events.lambda_destination_record(
        event, function_name="ScheduleExecutor", condition="RetriesExhausted"
    )
    result = handlers.run_cleanup(record)

    # THEN DONE stands
    assert result["recorded_failure"] is False
    assert infra.item(schedule_id) == before


def test_schedule_without_record_runs_nothing_and_is_deleted(handlers, infra):
    # GIVEN an orphan schedule: its create "failed" (the API removed the record) but
    # the Scheduler had created it
    schedule_id = handlers.create({"at": in_minutes(1)})
    infra.dynamodb.delete_item(
        TableName="one-off-schedules-test", Key={"schedule_id": {"S": schedule_id}}
    )

    # WHEN it fires
    delivery = handlers.deliver(handlers.fire(schedule_id))

    # THEN nothing runs, nothing is written, and the schedule is deleted
    assert delivery.response["outcome"] == "missing"
    assert infra.items() == []
    assert infra.schedule_names() == []


def test_executor_rejects_input_that_is_not_a_substituted_schedule_input(handlers, infra):
    # GIVEN the raw input (placeholders not substituted) and a mismatched ARN
    schedule_id = handlers.create({"at": in_minutes(1)})
    raw = json.loads(infra.schedule(schedule_id)["Target"]["Input"])
    other = dict(handlers.fire(schedule_id), schedule_id=str(uuid.uuid4()))

    # WHEN the executor gets them THEN it raises (Lambda retries, then the failure
    # destination), and the record is untouched
    for event in (raw, other, {"hello": "world"}, []):
        with pytest.raises(ValueError):
            handlers.run_executor(event)
    assert infra.item(schedule_id)["status"] == "PENDING"


def test_cleanup_of_a_record_without_schedule_raises_to_its_failure_queue(handlers, infra):
    # GIVEN records the cleanup cannot act on
    bad_records = [
        {"hello": "world"},  # not a destination record
        {  # a failure record whose event names no schedule
            "version": "1.0",
            "timestamp": "2025-03-14T09:30:01.250Z",
            "requestContext": {
                "requestId": "r1",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:X:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": {"not": "a schedule"},
        },
    ]
    # WHEN the cleanup gets them THEN it raises (after retries: its failure queue)
    for record in bad_records:
        with pytest.raises(ValueError):
            handlers.run_cleanup(record)


def test_cleanup_never_deletes_a_schedule_of_another_group(handlers, infra):
    # GIVEN a schedule in another group, and a record naming it
    infra.scheduler.create_schedule_group(Name="someone-else")
    infra.scheduler.create_schedule(
        Name="theirs",
        GroupName="someone-else",
        ScheduleExpression="at(2025-03-14T10:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": EXECUTOR_ARN, "RoleArn": SCHEDULER_ROLE_ARN},
    )
    event = {
        "schedule_id": str(uuid.uuid4()),
        "payload": {},
        "schedule_arn": events.schedule_arn("theirs", group="someone-else"),
        "scheduled_time": "2025-03-14T10:00:00Z",
        "execution_id": "x",
        "attempt_number": "1",
    }
    record = events.lambda_destination_record(event, function_name="ScheduleExecutor")

    # WHEN the cleanup gets it THEN it refuses and the schedule stays
    with pytest.raises(ValueError, match="someone-else"):
        handlers.run_cleanup(record)
    assert infra.schedule_names("someone-else") == ["theirs"]


def test_many_schedules_all_fire_once_and_none_remains(handlers, infra):
    # GIVEN twenty schedules a few seconds apart, one of them cancelled
    ids = [handlers.create({"at": in_minutes(1 + i / 10), "payload": {"n": i}}) for i in range(20)]
    assert handlers.cancel(ids[7]).status == 200

    # WHEN each remaining one fires (in time order), with one duplicate delivery
    for schedule_id in ids:
        if schedule_id == ids[7]:
            continue
        event = handlers.fire(schedule_id)
        handlers.deliver(event)
        if schedule_id == ids[3]:
            handlers.deliver(event)

    # THEN every run is DONE after exactly one attempt, the cancelled one is CANCELLED
    statuses = {i["schedule_id"]: (i["status"], attempts_of(i)) for i in infra.items()}
    assert statuses.pop(ids[7]) == ("CANCELLED", 0)
    assert set(statuses.values()) == {("DONE", 1)}
    # AND no schedule remains
    assert infra.schedule_names() == []


def test_retries_with_different_request_ids_still_claim_and_count(handlers, infra):
    # GIVEN a failing task
    schedule_id = handlers.create({"at": in_minutes(1), "outcome": "fail"})
    event = handlers.fire(schedule_id)

    # WHEN three attempts arrive, each with its own request id
    for _ in range(3):
        with pytest.raises(handlers.models.TaskFailedError):
            handlers.run_executor(event, request_id=str(uuid.uuid4()))
        handlers.clock.advance(60)

    # THEN each attempt claimed and released the record: it is PENDING for the next
    item = infra.item(schedule_id)
    assert item["status"] == "PENDING" and attempts_of(item) == 3
    assert "lease_owner" not in item
