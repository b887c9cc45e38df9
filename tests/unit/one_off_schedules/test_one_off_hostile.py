"""Hostile clients: strict JSON, timestamps with junk, unambiguous headers (POST /schedules)."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.support.events import assert_json_error
from tests.support.hostile import HostilePostTests, hostile_requests
from tests.unit.one_off_schedules.conftest import in_minutes

# A time 10 minutes after the fake clock's start (conftest.START), spelled out because
# the parameters are built at import time.
AT = "2025-03-14T09:36:53Z"


class TestHostilePost(HostilePostTests):
    """POST /schedules: a hostile request (here mostly in the free-form payload, which
    would be stored and sent on as the executor's input) leaves no record, no schedule."""

    HOSTILE = hostile_requests(
        json.dumps({"at": AT, "payload": {"v": "@@"}}).replace('"@@"', "@@"),
        valid_slot="1",
        duplicate_top=json.dumps({"at": AT, "outcome": "fail"})[:-1] + ', "outcome": "succeed"}',
        duplicate_nested=json.dumps({"at": AT})[:-1] + ', "payload": {"v": 1, "v": 2}}',
    )
    VALID = json.dumps({"at": AT, "payload": {"v": 1}})

    def snapshot(self, infra):
        return infra.items(), infra.schedule_names()

    def assert_nothing_written(self, infra):
        assert infra.items() == []
        assert infra.schedule_names() == []


def test_the_time_used_is_in_the_future():
    # GIVEN the hostile bodies' time WHEN compared THEN it is the one the fixtures post
    assert in_minutes(10) == AT


@pytest.mark.parametrize(
    "junk",
    ["\u0000junk", "\n", " ", "junk"],
    ids=["nul-junk", "newline", "space", "letters"],
)
def test_at_with_trailing_junk_is_400_invalid_time(handlers, infra, junk):
    # GIVEN a valid future time followed by junk
    # WHEN it is posted
    response = handlers.post({"at": AT + junk, "payload": {}})

    # THEN 400 invalid_time, nothing written or scheduled
    assert_json_error(response, 400, "invalid_time")
    assert infra.items() == []
    assert infra.schedule_names() == []


#: Strings a client may well send (documentation about the Scheduler, a template kept
#: for later) that are the Scheduler's context-attribute keywords, as a value and as a
#: member name; the Scheduler replaces every keyword in the whole Target.Input.
KEYWORD_PAYLOAD = {
    "template": "retry <aws.scheduler.attempt-number> of <aws.scheduler.schedule-arn>",
    "<aws.scheduler.execution-id>": "a member name",
    "<aws.scheduler.attempt-number>": 1,
    "1": 2,  # the key the line above would become: a duplicate after the replacement
}


def test_a_payload_with_scheduler_keywords_is_delivered_as_sent(handlers):
    # GIVEN a schedule whose payload holds the Scheduler's keywords
    created = handlers.post({"at": in_minutes(2), "payload": KEYWORD_PAYLOAD})
    assert created.status == 201, created.body
    schedule_id = created.body["schedule_id"]

    # WHEN it fires, the Scheduler filling in its keywords, and the executor runs
    event = handlers.fire(schedule_id, execution_id="d32c5kddcf5bb8c3")
    handlers.deliver(event)

    # THEN the executor got the payload the client sent, and the run's digest is its own
    assert event["payload"] == KEYWORD_PAYLOAD
    canonical = json.dumps(
        KEYWORD_PAYLOAD, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert handlers.get(schedule_id).body["result"]["payload_sha256"] == expected
