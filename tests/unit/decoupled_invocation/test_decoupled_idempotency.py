"""Issue 16, items 5 and 6 for POST /jobs: the same request is told by its meaning
(defaults applied; there are no instants or order-free lists in this body), and every
replay is the first answer byte for byte, also after the job ran and to concurrent twins."""

from __future__ import annotations

import pytest
from handler_kit.status_transitions import attempts_of

from tests.support.answers import assert_all_got_the_winners_answer, assert_replayed
from tests.support.events import assert_json_error
from tests.support.interleave import interleaved

KEY = {"Idempotency-Key": "same-meaning"}


@pytest.mark.parametrize(
    ("first_body", "retry_body"),
    [
        ({"task": "a"}, {"task": "a", "input": "", "duration_ms": 0, "outcome": "succeed"}),
        ({"task": "a", "input": "caf\u00e9"}, '{"input":"caf\\u00e9","task":"a"}'),
        ({"task": "a", "duration_ms": 5}, '{ "duration_ms" : 5 ,\n "task" : "a" }'),
    ],
    ids=["defaults", "escapes-and-order", "whitespace"],
)
def test_an_equivalent_body_replays_the_first_answer_byte_for_byte(
    handlers, infra, clock, first_body, retry_body
):
    # GIVEN a keyed job that has run (its status is no longer the first answer's)
    first = handlers.post(first_body, headers=KEY)
    assert first.status == 202, first.body
    handlers.drain_queue()

    # WHEN the key comes back later with the same meaning spelled differently
    clock.advance(10)
    retry = handlers.post(retry_body, headers=KEY)

    # THEN the first answer: status, body bytes, Location and Retry-After; nothing queued
    assert_replayed(retry, first)
    assert len(infra.items()) == 1
    assert infra.queue_depth() == 0


@pytest.mark.parametrize(
    "retry_body",
    [
        {"task": "A"},
        {"task": "a", "input": " "},
        {"task": "a", "input": "cafe\u0301"},
        {"task": "a", "duration_ms": 1},
        {"task": "a", "outcome": "fail"},
    ],
    ids=["task-case", "input", "unicode-decomposed", "duration", "outcome"],
)
def test_a_different_meaning_with_the_same_key_is_422(handlers, infra, retry_body):
    # GIVEN a keyed job (input "café" precomposed for the decomposed case)
    first_body = (
        {"task": "a", "input": "caf\u00e9"} if "u0301" in repr(retry_body) else {"task": "a"}
    )
    handlers.post(first_body, headers=KEY)
    before = infra.items()

    # WHEN the key comes back with another meaning THEN 422 and nothing changes
    assert_json_error(handlers.post(retry_body, headers=KEY), 422, "idempotency_key_reused")
    assert infra.items() == before


def test_interleaved_posts_with_one_key_make_one_job_and_answer_the_same_bytes(handlers, infra):
    # GIVEN five POSTs with one key and equivalent bodies, each letting the next run to
    # the end right before its own put of the job: all find no job, the innermost wins
    # the put and the others must answer from its item
    bodies = [{"task": "a"}, {"task": "a", "duration_ms": 0}] + [{"task": "a"}] * 3
    # WHEN they run
    answers, first = interleaved(
        handlers.api.store._client, "PutItem", bodies, lambda b: handlers.post(b, headers=KEY)
    )

    # THEN one job, and every answer is the winner's bytes
    assert_all_got_the_winners_answer(answers, first, 202)
    assert len(infra.items()) == 1
    # AND the job runs once (the losers' re-sends of a PENDING job are absorbed)
    handlers.drain_queue()
    [item] = infra.items()
    assert (item["status"], attempts_of(item)) == ("DONE", 1)
