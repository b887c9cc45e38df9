"""Issue 16, items 5 and 6 for POST /schedules: the same request is told by its meaning
(``at`` as an instant, defaults applied, payload members in any order), and every replay
is the first answer byte for byte, also after the schedule ran and to concurrent twins."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.answers import assert_all_got_the_winners_answer
from tests.support.events import assert_json_error
from tests.support.interleave import interleaved
from tests.unit.one_off_schedules.conftest import TABLE_NAME, in_minutes

KEY = {"Idempotency-Key": "same-meaning"}
# Five minutes after the fake clock's start (conftest START), spelled several ways below.
AT_Z = "2025-03-14T09:31:53Z"


@pytest.fixture(autouse=True)
def _check_start():
    assert in_minutes(5) == AT_Z


@pytest.mark.parametrize(
    ("first_body", "retry_body"),
    [
        ({"at": AT_Z}, {"at": "2025-03-14T09:31:53+00:00"}),
        ({"at": AT_Z}, {"at": "2025-03-14T09:31:53.000Z"}),
        ({"at": AT_Z}, {"at": "2025-03-14T10:31:53+01:00"}),
        ({"at": AT_Z}, {"at": AT_Z, "payload": {}, "outcome": "succeed"}),
        (
            {"at": AT_Z, "payload": {"a": 1, "b": [1, 2]}},
            {"payload": {"b": [1, 2], "a": 1}, "at": AT_Z},
        ),
    ],
    ids=["plus-zero", "fraction", "other-offset", "defaults", "member-order"],
)
def test_an_equivalent_body_replays_the_first_answer_byte_for_byte(
    handlers, infra, first_body, retry_body
):
    # GIVEN a keyed schedule
    first = handlers.post(first_body, headers=KEY)
    assert first.status == 201, first.body

    # WHEN the key comes back with the same meaning spelled differently
    handlers.clock.advance(30)
    retry = handlers.post(retry_body, headers=KEY)

    # THEN the first answer: status, body bytes and Location; one record, one schedule
    assert retry.status == first.status
    assert retry.raw_body == first.raw_body
    assert retry.headers["location"] == first.headers["location"]
    assert len(infra.items()) == 1
    assert infra.schedule_names() == [first.body["schedule_id"]]


@pytest.mark.parametrize(
    "retry_body",
    [
        {"at": "2025-03-14T09:31:54Z"},
        {"at": "2025-03-14T09:31:53.5Z"},
        {"at": "2025-03-14T09:31:53+01:00"},
        {"at": AT_Z, "outcome": "fail"},
        {"at": AT_Z, "payload": {"n": 2.0}},
        {"at": AT_Z, "payload": {"n": [2, 1]}},
    ],
    ids=[
        "second-later",
        "fraction-later",
        "offset-changes-instant",
        "outcome",
        "float",
        "list",
    ],
)
def test_a_different_meaning_with_the_same_key_is_422(handlers, infra, retry_body):
    # GIVEN a keyed schedule (payload {"n": 2} or {"n": [1, 2]} would differ as well:
    # the payload is handed on as sent, so 2.0 and a reordered list are another payload)
    first = handlers.post({"at": AT_Z, "payload": {"n": [1, 2]}}, headers=KEY)
    assert first.status == 201
    before = infra.items()

    # WHEN the key comes back with another meaning THEN 422 and nothing changes
    if "payload" not in retry_body:
        retry_body = {**retry_body, "payload": {"n": [1, 2]}}
    assert_json_error(handlers.post(retry_body, headers=KEY), 422, "idempotency_key_reused")
    assert infra.items() == before
    assert infra.schedule_names() == [first.body["schedule_id"]]


def test_interleaved_posts_with_one_key_make_one_schedule_and_answer_the_same_bytes(
    handlers, infra
):
    # GIVEN five POSTs with one key and equivalent bodies, each letting the next run to
    # the end right before its own put of the record: all find no record, the innermost
    # wins the put and the others must answer from its record
    bodies = [
        {"at": AT_Z},
        {"at": "2025-03-14T09:31:53+00:00"},
        {"at": "2025-03-14T10:31:53+01:00", "outcome": "succeed"},
        {"at": AT_Z, "payload": {}},
        {"at": AT_Z},
    ]
    # WHEN they run
    answers, first = interleaved(
        handlers.api.store._client, "PutItem", bodies, lambda b: handlers.post(b, headers=KEY)
    )

    # THEN one record and one schedule, and every answer is the winner's bytes
    assert_all_got_the_winners_answer(answers, first, 201)
    assert len(infra.items()) == 1
    assert infra.schedule_names() == [first.body["schedule_id"]]


def test_a_record_stored_before_normalization_still_replays_its_retries(handlers, infra):
    # GIVEN a keyed record as stored before this change: the hash over the request as
    # spelled (``at`` with +00:00) and no stored answer
    body = {"at": "2025-03-14T09:31:53+00:00"}
    first = handlers.post(body, headers=KEY)
    spelled = handlers.parsing.canonical_json(handlers.models.ScheduleRequest(**body).model_dump())
    infra.dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"schedule_id": {"S": first.body["schedule_id"]}},
        UpdateExpression="SET request_hash = :h REMOVE #r",
        ExpressionAttributeNames={"#r": "response"},
        ExpressionAttributeValues={":h": {"S": hashlib.sha256(spelled.encode()).hexdigest()}},
    )

    # WHEN the client retries it as it was spelled THEN it is a replay of that schedule
    retry = handlers.post(body, headers=KEY)
    assert retry.status == 201
    assert retry.body == first.body
    assert len(infra.items()) == 1
