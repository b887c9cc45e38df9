"""Pattern 5, self-deleting one-off schedules: they fire once and leave nothing behind.

Times are chosen a minute or more ahead (the API refuses the past): with the demo's
fast clock a schedule due in 90 s fires about a second after it was created; on a
deployed stage the waits are real minutes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from localstage.scenarios import Scenario, ScenarioFailedError, Transcript
from localstage.target import HttpResponse, Target

from patterns import pattern_name_of

#: The stack of the pattern folder this module is in.
STACK = pattern_name_of(__file__)
#: Bounded waits (real seconds): firing, Lambda's two retries of a failing task
#: (3 stage minutes) and the cleanup, at the demo's clock speed plus cold starts.
FIRE_TIMEOUT = 60.0
#: The first schedule is due this far ahead; the next ones SPACING apart.
LEAD = timedelta(seconds=90)
SPACING = timedelta(seconds=2)
DEMO_SCHEDULES = 20


def _api(target: Target) -> str:
    return target.output(STACK, "ApiUrl")


def at_time(offset: timedelta) -> str:
    """An ISO-8601 time ``offset`` from now, with its time zone (as the API wants)."""
    return (datetime.now(UTC) + offset).isoformat(timespec="seconds")


def create(
    target: Target,
    *,
    at: str,
    payload: dict[str, Any] | None = None,
    outcome: str | None = None,
    key: str | None = None,
) -> HttpResponse:
    """``POST /schedules``; fails unless 201 (a repeated Idempotency-Key replays the 201)."""
    body: dict[str, Any] = {"at": at, "payload": payload or {}}
    if outcome is not None:
        body["outcome"] = outcome
    headers = {"Idempotency-Key": key} if key else None
    response = target.call_api(_api(target), "POST", "schedules", json_body=body, headers=headers)
    if response.status != 201:
        raise ScenarioFailedError(f"POST /schedules answered {response.status}: {response.body}")
    return response


def view(target: Target, schedule_id: str) -> dict[str, Any]:
    response = target.call_api(_api(target), "GET", f"schedules/{schedule_id}")
    if response.status != 200:
        raise ScenarioFailedError(f"GET schedules/{schedule_id}: {response.status}")
    body: dict[str, Any] = response.body
    return body


def wait_until_finished(
    target: Target, schedule_id: str, *, timeout: float = FIRE_TIMEOUT
) -> dict[str, Any]:
    """GET the schedule until it is DONE or FAILED and its schedule was deleted."""

    def finished() -> dict[str, Any] | None:
        body = view(target, schedule_id)
        if body["status"] in ("DONE", "FAILED") and body.get("schedule_deleted_at"):
            return body
        return None

    return target.wait_for(
        f"schedule {schedule_id} to finish and be cleaned up", finished, timeout=timeout
    )


def remaining(target: Target, schedule_ids: list[str]) -> list[str]:
    """Which of these schedules still exist in the stack's schedule group."""
    group = target.output(STACK, "ScheduleGroupName")
    names = {name.lower() for name in target.list_schedules(group)}
    return [schedule_id for schedule_id in schedule_ids if schedule_id.lower() in names]


def fire_many(target: Target, transcript: Transcript, count: int = DEMO_SCHEDULES) -> None:
    """``count`` schedules a couple of seconds apart each fire once; none remains."""
    ids: list[str] = []
    for index in range(count):
        response = create(target, at=at_time(LEAD + SPACING * index), payload={"index": index})
        ids.append(response.body["schedule_id"])
    transcript.say(f"created {count} schedules due from {LEAD.seconds} s ahead, 2 s apart")
    results = [wait_until_finished(target, schedule_id) for schedule_id in ids]
    not_done = [body for body in results if body["status"] != "DONE" or body["attempts"] != 1]
    if not_done:
        raise ScenarioFailedError(f"schedules did not run exactly once: {not_done[:3]}")
    target.wait_for(
        "every fired schedule to be deleted",
        lambda: not remaining(target, ids),
        timeout=FIRE_TIMEOUT,
    )
    transcript.say(f"all {count} ran once (DONE, 1 attempt each); 0 schedules remain")


def failing_task(target: Target, transcript: Transcript) -> None:
    """A task that fails every attempt ends FAILED; its schedule is gone too."""
    response = create(target, at=at_time(LEAD), payload={"task": "doomed"}, outcome="fail")
    schedule_id = response.body["schedule_id"]
    body = wait_until_finished(target, schedule_id, timeout=FIRE_TIMEOUT * 2)
    if body["status"] != "FAILED" or body.get("error", {}).get("code") != "task_failed":
        raise ScenarioFailedError(f"expected FAILED with task_failed, got {body}")
    if remaining(target, [schedule_id]):
        raise ScenarioFailedError("the failed schedule was not deleted")
    item = target.get_item(target.output(STACK, "ScheduleTableName"), {"schedule_id": schedule_id})
    failure = (item or {}).get("failure") or {}
    event = json.loads(failure.get("event") or "{}")
    if failure.get("condition") != "RetriesExhausted" or event.get("schedule_id") != schedule_id:
        raise ScenarioFailedError(f"the failure record lacks the event: {failure}")
    transcript.say(
        f"schedule {schedule_id} FAILED after {failure.get('approximate_invoke_count')} "
        f"attempts ({body['error']['message']}); its schedule is gone, its event recorded"
    )


def cancel_before_firing(target: Target, transcript: Transcript) -> None:
    """DELETE before the time: CANCELLED, the schedule is gone, nothing runs."""
    response = create(target, at=at_time(timedelta(hours=1)), payload={"task": "never"})
    schedule_id = response.body["schedule_id"]
    cancelled = target.call_api(_api(target), "DELETE", f"schedules/{schedule_id}")
    again = target.call_api(_api(target), "DELETE", f"schedules/{schedule_id}")
    if cancelled.status != 200 or cancelled.body["status"] != "CANCELLED" or again.status != 200:
        raise ScenarioFailedError(f"cancel answered {cancelled.status}: {cancelled.body}")
    if remaining(target, [schedule_id]):
        raise ScenarioFailedError("the cancelled schedule still exists")
    if view(target, schedule_id)["status"] != "CANCELLED":
        raise ScenarioFailedError("the cancelled schedule changed state")
    transcript.say(f"schedule {schedule_id} CANCELLED (twice: 200 both); no schedule remains")


def duplicate_create(target: Target, transcript: Transcript) -> None:
    """The same Idempotency-Key twice: the first 201 answered twice; one schedule."""
    key = f"scenario-{uuid.uuid4()}"
    at = at_time(timedelta(hours=1))
    first = create(target, at=at, payload={"n": 1}, key=key)
    second = create(target, at=at, payload={"n": 1}, key=key)
    schedule_id = first.body["schedule_id"]
    if (first.status, second.status) != (201, 201) or second.body != first.body:
        raise ScenarioFailedError(
            f"expected the first 201 answer twice, got {first.status}/{second.status}"
        )
    if remaining(target, [schedule_id]) != [schedule_id]:
        raise ScenarioFailedError("expected exactly one schedule for the key")
    target.call_api(_api(target), "DELETE", f"schedules/{schedule_id}")
    transcript.say(f"same key twice: one 201 answer, one schedule ({schedule_id}); cancelled it")


def bad_time(target: Target, transcript: Transcript) -> None:
    """A time in the past is a 400 and creates nothing."""
    response = target.call_api(
        _api(target),
        "POST",
        "schedules",
        json_body={"at": at_time(-timedelta(minutes=5)), "payload": {}},
    )
    if response.status != 400 or response.body.get("error") != "invalid_time":
        raise ScenarioFailedError(f"expected 400 invalid_time, got {response.status}")
    transcript.say(f"past time refused: 400 {response.body['message']}")


SCENARIOS = [
    Scenario(f"{DEMO_SCHEDULES} schedules fire once each and none remains", fire_many),
    Scenario("failure: a failing task ends FAILED, its schedule deleted", failing_task),
    Scenario("cancel before firing: CANCELLED, schedule gone", cancel_before_firing),
    Scenario("idempotent create: the same key makes one schedule", duplicate_create),
    Scenario("bad input: a past time is a 400", bad_time),
]
