"""Pattern 1, decoupled invocation: POST 202, poll until 200; failures end visibly."""

from __future__ import annotations

import hashlib
import json

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
#: Generous: at worst a cold start of both functions plus a batch.
FINISH_TIMEOUT = 30.0
#: A poison message needs maxReceiveCount receives, each after a visibility timeout
#: (stage time: fast with the demo's clock, minutes on a deployed stage).
DEAD_LETTER_TIMEOUT = 90.0


def submit(target: Target, job: dict[str, object]) -> HttpResponse:
    """``POST /jobs``; fails unless the API accepted it with 202 and a Location."""
    return post_accepted(target, target.output(STACK, "ApiUrl"), "jobs", job)


def poll_until_finished(
    target: Target, location: str, *, timeout: float = FINISH_TIMEOUT
) -> HttpResponse:
    """GET the job until it answers 200 (202 means still in progress)."""
    return poll_until_done(
        target,
        target.output(STACK, "ApiUrl"),
        location,
        description=f"job {location} to finish",
        timeout=timeout,
        interval=0.3,
    )


def happy_path(target: Target, transcript: Transcript) -> None:
    accepted = submit(target, {"task": "thumbnail", "input": "hello", "duration_ms": 200})
    done = poll_until_finished(target, accepted.headers["location"])
    expected = hashlib.sha256(b"hello").hexdigest()
    if done.body.get("status") != "DONE" or done.body.get("result", {}).get("sha256") != expected:
        raise ScenarioFailedError(f"expected DONE with sha256 of the input, got {done.body}")
    transcript.say(f"job {done.body['job_id']} DONE: {done.body['result']}")


def business_failure(target: Target, transcript: Transcript) -> None:
    accepted = submit(target, {"task": "report", "outcome": "fail"})
    finished = poll_until_finished(target, accepted.headers["location"])
    if finished.body.get("status") != "FAILED" or finished.body["error"]["code"] != "job_failed":
        raise ScenarioFailedError(f"expected FAILED with job_failed, got {finished.body}")
    transcript.say(f"job {finished.body['job_id']} FAILED: {finished.body['error']['message']}")


def poison_message(target: Target, transcript: Transcript) -> None:
    queue = target.output(STACK, "TaskQueueUrl")
    dead_letters = target.output(STACK, "TaskDeadLetterQueueUrl")
    before = target.queue_depth(dead_letters)
    target.send_message(queue, json.dumps({"job_id": "not-a-uuid"}))
    transcript.say("sent a poison message to the task queue")
    depth = target.wait_for(
        "the poison message to reach the DLQ",
        lambda: (lambda depth: depth if depth > before else None)(target.queue_depth(dead_letters)),
        timeout=DEAD_LETTER_TIMEOUT,
        interval=0.5,
    )
    transcript.say(f"dead-letter queue depth {before} -> {depth}")


def duplicate_delivery(target: Target, transcript: Transcript) -> None:
    accepted = submit(target, {"task": "invoice", "input": "once"})
    job_id = accepted.body["job_id"]
    first = poll_until_finished(target, accepted.headers["location"])
    table = target.output(STACK, "JobTableName")
    stored = target.get_item(table, {"job_id": job_id})
    queue = target.output(STACK, "TaskQueueUrl")
    target.send_message(queue, json.dumps({"job_id": job_id}))
    transcript.say(f"delivered the task message of job {job_id} a second time")
    target.wait_for(
        "the duplicate to be consumed",
        lambda: target.queue_depth(queue) == 0,
        timeout=FINISH_TIMEOUT,
    )
    again = target.call_api(target.output(STACK, "ApiUrl"), "GET", accepted.headers["location"])
    if target.get_item(table, {"job_id": job_id}) != stored or again.body != first.body:
        raise ScenarioFailedError(f"the duplicate changed the job: {first.body} -> {again.body}")
    transcript.say("the job record and its result are unchanged")


def bad_request(target: Target, transcript: Transcript) -> None:
    api = target.output(STACK, "ApiUrl")
    response = target.call_api(api, "POST", "jobs", json_body={"task": "", "extra": 1})
    if response.status != 400 or response.body.get("error") != "invalid_request":
        raise ScenarioFailedError(
            f"expected 400 invalid_request, got {response.status} {response.body}"
        )
    transcript.say("rejected by API Gateway's validator before any function ran")


SCENARIOS = [
    Scenario("happy path: POST 202, poll, 200 DONE", happy_path),
    Scenario("failure: outcome=fail ends FAILED", business_failure),
    Scenario("failure: a poison message lands in the DLQ", poison_message),
    Scenario("at least once: a duplicate delivery changes nothing", duplicate_delivery),
    Scenario("bad input: 400 from the validator", bad_request),
]
