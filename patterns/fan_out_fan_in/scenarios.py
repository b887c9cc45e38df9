"""Pattern 2, fan-out/fan-in: POST N subtasks, workers count them down, the reducer finishes.

The reducer runs from the job table's stream (filtered on ``remaining = 0``), so a
job only ends DONE where DynamoDB stream mappings run (localstage's
``sources/dynamodb_streams.py``, or a deployed stage). The helpers here are shared
with ``tests/e2e/test_fan_out_fan_in.py``: the expected aggregate is computed from
the inputs the way the API documents them, never read back from the stage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from localstage.scenarios import (
    Scenario,
    ScenarioFailedError,
    Transcript,
    poll_until_done,
    post_accepted,
)
from localstage.target import HttpResponse, Target

from patterns import pattern_name_of

#: The stack of the pattern folder this module is in.
STACK = pattern_name_of(__file__)
#: Ventilation, N/10 worker batches at maximum concurrency 5, one stream poll and the
#: reducer: seconds locally for N = 1,000; generous for a deployed stage.
FINISH_TIMEOUT = 120.0
#: A poison subtask needs maxReceiveCount (5) receives, each after a visibility
#: timeout (stage time: seconds with the demo's clock), then one more to reach the DLQ.
DEAD_LETTER_TIMEOUT = 90.0
#: The API's documented limit on N.
MAX_SUBTASKS = 10_000


def seeded_value(seed: int, index: int) -> int:
    """Subtask ``index``'s input in a ``count``/``seed`` job, as the pattern's README says."""
    digest = hashlib.sha256(f"{seed}:{index}".encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big") % 1000


def expected_aggregate(values: Sequence[int], failed: Iterable[int] = ()) -> dict[str, Any]:
    """The aggregate the API must report: ``value**2`` summed over the subtasks that succeed."""
    failing = sorted(set(failed))
    results = [value * value for index, value in enumerate(values) if index not in failing]
    return {
        "count": len(results),
        "sum": sum(results),
        "min": min(results) if results else None,
        "max": max(results) if results else None,
        "failed": len(failing),
        "failed_subtasks": failing[:100],
    }


def api(target: Target) -> str:
    return target.output(STACK, "ApiUrl")


def submit(target: Target, job: dict[str, Any]) -> HttpResponse:
    """``POST /jobs``; fails unless the API accepted it with 202 and a Location."""
    return post_accepted(target, api(target), "jobs", job)


def poll_until_finished(
    target: Target, location: str, *, timeout: float = FINISH_TIMEOUT
) -> HttpResponse:
    """GET the job until it answers 200 (202 means RUNNING or REDUCING)."""
    return poll_until_done(
        target,
        api(target),
        location,
        description=f"job {location} to finish (the reducer runs from the job table's stream)",
        timeout=timeout,
        interval=0.5,
    )


def check_finished(
    body: dict[str, Any], *, status: str, values: Sequence[int], failed: Sequence[int] = ()
) -> None:
    """The end state of a job: status, counters and aggregate, all exact."""
    expected = {
        "status": status,
        "total": len(values),
        "remaining": 0,
        "done": len(values) - len(set(failed)),
        "failed": len(set(failed)),
        "aggregate": expected_aggregate(values, failed),
    }
    seen = {key: body.get(key) for key in expected}
    if seen != expected:
        raise ScenarioFailedError(f"expected {expected}, got {seen}")


def happy_path(target: Target, transcript: Transcript) -> None:
    n, seed = 100, 42
    accepted = submit(target, {"count": n, "seed": seed})
    done = poll_until_finished(target, accepted.headers["location"])
    check_finished(done.body, status="DONE", values=[seeded_value(seed, i) for i in range(n)])
    aggregate = done.body["aggregate"]
    transcript.say(
        f"job {done.body['job_id']} DONE: remaining {done.body['remaining']}, "
        f"count {aggregate['count']}, sum {aggregate['sum']} (as computed from the inputs)"
    )


def poison_subtask(target: Target, transcript: Transcript) -> None:
    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    poison = 4
    dead_letters = target.output(STACK, "SubtaskDeadLetterQueueUrl")
    before = target.queue_depth(dead_letters)
    accepted = submit(target, {"items": values, "fail_indexes": [poison]})
    transcript.say(f"subtask {poison} fails on every delivery")
    finished = poll_until_finished(target, accepted.headers["location"])
    check_finished(finished.body, status="FAILED", values=values, failed=[poison])
    if finished.body.get("error", {}).get("code") != "subtasks_failed":
        raise ScenarioFailedError(f"expected error subtasks_failed, got {finished.body}")
    transcript.say(
        f"job FAILED: {finished.body['error']['message']}; the other "
        f"{finished.body['done']} subtasks completed"
    )
    depth = target.wait_for(
        "the poison subtask to reach the DLQ",
        lambda: (lambda depth: depth if depth > before else None)(target.queue_depth(dead_letters)),
        timeout=DEAD_LETTER_TIMEOUT,
        interval=0.5,
    )
    transcript.say(f"subtask dead-letter queue depth {before} -> {depth}")


SCENARIOS = [
    Scenario("happy path: N=100, remaining 0, DONE with the exact aggregate", happy_path),
    Scenario("failure: a poison subtask lands in the DLQ, the job reports it", poison_subtask),
]
