"""batch_processor against moto: duplicate notifications and hops run once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws_faults import first_reply_lost
from tests.unit.recursive_processor.conftest import (
    RECORDS_PER_HOP,
    TIMEOUT_MS,
    Processor,
    lines,
    run_id_of,
)

# --------------------------------------------------------------------------- duplicates


def test_a_duplicate_s3_notification_does_not_start_a_second_run(processor: Processor) -> None:
    # GIVEN one upload WHEN S3 notifies it three times (twice during the run, once after)
    # THEN there is one run, one chain of hops, and each record is counted once
    body = lines(2 * RECORDS_PER_HOP + 5)
    record = processor.upload_lines("dup.ndjson", body)
    first = processor.notify(record)
    second = processor.notify(record)
    processor.drain()
    processor.notify(record)
    assert first["run_ids"] == second["run_ids"]
    assert len(processor.infra.runs()) == 1
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3]
    processor.assert_done(run_id_of(first), body)


def test_a_hop_delivered_twice_is_processed_once(processor: Processor) -> None:
    # GIVEN a run in progress
    body = lines(4 * RECORDS_PER_HOP + 5)
    record = processor.upload_lines("twice.ndjson", body)
    run_id = processor.start(record)

    # WHEN every hop is delivered twice (Lambda's async queue delivers at least once)
    outcomes = []
    while processor.pending():
        payload = processor.pending()[0]
        outcomes.append(processor.deliver_next()["outcome"])
        outcomes.append(processor.invoke(payload)["outcome"])

    # THEN each duplicate did nothing: no double counting, no second chain
    assert outcomes == ["continued", "duplicate"] * 4 + ["done", "duplicate"]
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3, 4, 5]
    processor.assert_done(run_id, body)


def test_a_duplicate_arriving_while_the_hop_runs_does_nothing(processor: Processor) -> None:
    # GIVEN hop 1 of a run is being processed
    body = lines(2 * RECORDS_PER_HOP)
    record = processor.upload_lines("concurrent.ndjson", body)
    run_id = processor.start(record)
    payload = processor.pending()[0]
    during: list[dict[str, Any]] = []
    # WHEN the same hop is delivered again while the first holds it
    processor.sleep.during = lambda: during.append(processor.invoke(payload))
    processor.drain()

    # THEN the second delivery saw the claim and stopped; the run counts each record once
    assert [result["outcome"] for result in during] == ["in_progress"]
    processor.assert_done(run_id, body)


def test_a_hop_whose_successor_was_never_sent_resends_it_on_retry(processor: Processor) -> None:
    # GIVEN hop 1 commits, but invoking hop 2 fails (the invocation errors)
    body = lines(3 * RECORDS_PER_HOP + 5)
    record = processor.upload_lines("retry.ndjson", body)
    run_id = processor.start(record)
    hop_1 = processor.pending()[0]
    processor.invoker.fail_next = RuntimeError("Rate exceeded")
    with pytest.raises(RuntimeError, match="Rate exceeded"):
        processor.deliver_next()
    assert processor.infra.run(run_id)["hop"] == 2

    # WHEN Lambda retries hop 1
    retry = processor.invoke(hop_1)

    # THEN hop 1 is not processed again, hop 2 is sent, and the run completes correctly
    assert retry["outcome"] == "redispatched"
    processor.drain()
    processor.assert_done(run_id, body)
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3, 4]


def test_a_hop_that_crashed_gives_its_claim_back_for_the_retry(processor: Processor) -> None:
    # GIVEN hop 1 crashes half-way (e.g. S3 fails)
    body = lines(2 * RECORDS_PER_HOP)
    record = processor.upload_lines("crash.ndjson", body)
    run_id = processor.start(record)
    hop_1 = processor.pending()[0]

    def crash() -> None:
        raise ConnectionError("connection reset")

    processor.sleep.during = crash
    with pytest.raises(ConnectionError):
        processor.deliver_next()
    run = processor.infra.run(run_id)
    assert run["hop"] == 1 and run["records"] == 0 and "lease_owner" not in run

    # WHEN Lambda retries it THEN the retry takes the hop and the run is correct
    assert processor.invoke(hop_1)["outcome"] == "continued"
    processor.drain()
    processor.assert_done(run_id, body)


def test_a_claim_left_by_a_timed_out_hop_expires_for_the_retry(processor: Processor) -> None:
    # GIVEN a hop claimed by an invocation that was killed (claim left behind)
    body = lines(RECORDS_PER_HOP)
    record = processor.upload_lines("timeout.ndjson", body)
    run_id = processor.start(record)
    hop_1 = processor.pending()[0]
    store = processor.module.store
    now_ms = processor.batch.models.epoch_ms(processor.clock())
    assert store.claim(
        run_id, hop=1, offset=0, owner="killed", now_ms=now_ms, expires_ms=now_ms + 3_000
    )
    # WHEN the same hop arrives before the claim expired THEN it does nothing
    assert processor.invoke(hop_1)["outcome"] == "in_progress"
    # WHEN Lambda's retry arrives after the dead invocation's deadline THEN it runs
    processor.clock.advance(60)
    assert processor.invoke(hop_1)["outcome"] in {"continued", "done"}
    processor.drain()
    processor.assert_done(run_id, body)


def test_a_hop_whose_claim_was_taken_over_cannot_commit_over_the_new_holder(
    processor: Processor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run of three hops whose hop 1 invocation A (event-A) claimed to its deadline,
    # and a claim owner per request id, so invocation B's claim below is the one its own
    # invocation then holds
    body = lines(2 * RECORDS_PER_HOP + 5)
    run_id = processor.start(processor.upload_lines("taken-over.ndjson", body))
    hop_1 = processor.pending()[0]
    processor.delivered += 1
    monkeypatch.setattr(
        processor.batch.runner.status_transitions,
        "lease_owner_for",
        lambda request_id: f"{request_id}/claim",
    )
    store = processor.module.store
    taken_over: list[dict[str, Any]] = []

    def a_stalls_past_its_claim_and_b_takes_the_hop() -> None:
        processor.clock.advance(TIMEOUT_MS / 1000)  # A's claim expires (A is past its deadline)
        now_ms = processor.batch.models.epoch_ms(processor.clock())
        assert store.claim(
            run_id,
            hop=1,
            offset=0,
            owner="event-B/claim",
            now_ms=now_ms,
            expires_ms=now_ms + TIMEOUT_MS,
        )
        taken_over.append(processor.infra.run(run_id))

    # WHEN A, after its first record, stalls past its claim's end while B takes the hop over,
    # then commits what it read
    processor.sleep.during = a_stalls_past_its_claim_and_b_takes_the_hop
    outcome = processor.invoke(hop_1, request_id="event-A")

    # THEN A's commit is refused and keeps nothing: B still holds the hop at offset 0 with
    # nothing counted, and A sent no hop 2
    assert outcome["outcome"] == "lost_claim"
    run = processor.infra.run(run_id)
    assert run == taken_over[0]
    assert (run["lease_owner"], run["hop"], run["offset"]) == ("event-B/claim", 1, 0)
    assert (run["records"], run["amount_total"], run["bytes_read"]) == (0, 0, 0)
    assert [p["hop"] for p in processor.invoker.payloads] == [1]
    # AND B, holding the hop, commits it, and the run counts each of hop 1's records once
    assert processor.invoke(hop_1, request_id="event-B")["outcome"] == "continued"
    assert processor.infra.run(run_id)["records"] == RECORDS_PER_HOP
    processor.drain()
    processor.assert_done(run_id, body)
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3]


def _hop_1_claimed_by(
    processor: Processor, owner: str, *, for_ms: int = 300_000
) -> tuple[list[str], str, dict[str, Any]]:
    """A run of three hops whose hop 1 was sent and is held by ``owner`` for ``for_ms``
    (its delivery is taken off the pending list): the body, the run id and hop 1's event."""
    body = lines(2 * RECORDS_PER_HOP + 5)
    run_id = processor.start(processor.upload_lines(f"{owner.replace('/', '-')}.ndjson", body))
    hop_1 = processor.pending()[0]
    processor.delivered += 1
    now_ms = processor.batch.models.epoch_ms(processor.clock())
    assert processor.module.store.claim(
        run_id, hop=1, offset=0, owner=owner, now_ms=now_ms, expires_ms=now_ms + for_ms
    )
    return body, run_id, hop_1


def _hop_1_held_by_a_dead_attempt(processor: Processor) -> tuple[list[str], str, dict[str, Any]]:
    """:func:`_hop_1_claimed_by` an attempt of event-1 with a 6 s timeout that died
    holding the claim (out of memory, or its release failed too): the claim lives to
    that attempt's deadline, 6 s on."""
    return _hop_1_claimed_by(processor, "event-1/crashed", for_ms=6_000)


@pytest.mark.parametrize(
    "commits_after_s",
    [0.0, 2.0],
    ids=["commits-during-the-first-pause", "commits-at-its-margin"],
)
def test_a_copy_of_an_event_meeting_its_own_live_hop_waits_and_ends_as_a_duplicate(
    processor: Processor, commits_after_s: float
) -> None:
    # GIVEN hop 1 claimed by the attempt event-1 to its deadline 3 s on, which commits
    # at once or 2 s in (its remaining time then at the 1 s safety margin)
    owner = "event-1/running"
    body, run_id, hop_1 = _hop_1_claimed_by(processor, owner, for_ms=3_000)
    commits_at = processor.clock() + timedelta(seconds=commits_after_s)

    def holder_commits() -> None:  # the running attempt, played by another invocation
        if processor.clock() < commits_at:
            processor.sleep.during = holder_commits
            return
        processor.module.store.release(run_id, owner=owner)
        assert processor.invoke(hop_1, request_id="event-3")["outcome"] == "continued"

    # WHEN a copy of that event (the same request id) starts half a margin later
    processor.clock.advance(0.5)
    processor.sleep.during = holder_commits
    outcome = processor.invoke(hop_1, request_id="event-1")

    # THEN the copy waits past the commit (even with less than twice the margin left by
    # then) instead of failing into Lambda's retries, the failure queue and an Errors
    # alarm, ends as a duplicate, and the run counts each record once
    assert outcome["outcome"] == "duplicate"
    assert processor.sleep.calls[0] == processor.batch.claims.FIRST_PAUSE_S
    processor.drain()
    processor.assert_done(run_id, body)


def test_lambdas_retry_of_an_attempt_that_died_holding_its_hop_waits_for_the_claim_to_end(
    processor: Processor,
) -> None:
    # GIVEN hop 1's attempt (request id event-1, a 6 s timeout) died 3 s in, its release
    # failing too (out of memory, or DynamoDB throttled): its claim lives to its deadline
    body, run_id, hop_1 = _hop_1_held_by_a_dead_attempt(processor)
    processor.clock.advance(3)

    # WHEN another event's copy of the hop arrives THEN it does nothing: the claim is live
    assert processor.invoke(hop_1, request_id="event-2")["outcome"] == "in_progress"
    # WHEN Lambda retries the dead attempt's event (same request id, a whole timeout)
    retry = processor.invoke(hop_1, request_id="event-1", remaining_ms=6_000)

    # THEN the retry waits out the claim, runs the hop in the time it has left, and the
    # run goes on (answered "in progress", the event would be used up, the run RUNNING)
    assert retry["outcome"] == "continued"
    assert sum(processor.sleep.calls) >= 3
    processor.drain()
    processor.assert_done(run_id, body)


@pytest.mark.parametrize(
    ("claim_ms", "remaining_ms", "waits"),
    [(300_000, 3_000, False), (6_000, 6_000, True)],
    ids=["claim-outlives-the-delivery", "claim-ends-at-the-deliverys-deadline"],
)
def test_a_delivery_that_cannot_outwait_its_events_claim_fails_so_lambda_retries_it(
    processor: Processor, claim_ms: int, remaining_ms: int, waits: bool
) -> None:
    # GIVEN hop 1 held by an attempt of event-1, and a delivery of that event that
    # starts at once: the claim either outlives it (a copy that started before its
    # holder) or ends exactly at its deadline (a retry with the same timeout)
    owner = "event-1/holder"
    body, run_id, hop_1 = _hop_1_claimed_by(processor, owner, for_ms=claim_ms)

    # WHEN the delivery meets the claim
    with pytest.raises(RuntimeError, match="claimed by an earlier attempt") as raised:
        processor.invoke(hop_1, request_id="event-1", remaining_ms=remaining_ms)

    # THEN it fails for Lambda to retry, having taken nothing: at once (no billed wait)
    # when waiting could not help, else after pausing between its looks (never a zero
    # pause, never a spin)
    assert type(raised.value).__name__ == "HopHeldByEarlierAttemptError"
    run = processor.infra.run(run_id)
    assert (run["status"], run["hop"], run["lease_owner"]) == ("RUNNING", 1, owner)
    calls = processor.sleep.calls
    assert (0 < len(calls) < 10 and min(calls) > 0) if waits else calls == []
    # AND once the claim's holder has committed, Lambda's retry of the event is a duplicate
    processor.module.store.release(run_id, owner=owner)
    assert processor.invoke(hop_1, request_id="event-3")["outcome"] == "continued"
    assert processor.invoke(hop_1, request_id="event-1")["outcome"] == "duplicate"
    processor.drain()
    processor.assert_done(run_id, body)


def test_a_hop_taken_late_that_processes_nothing_is_retried_not_failed(
    processor: Processor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN hop 1's dead attempt event-1 holds its claim to its deadline, 6 s on, and
    # Lambda's retry of it starts 3 s in
    body, run_id, hop_1 = _hop_1_held_by_a_dead_attempt(processor)
    processor.clock.advance(3)
    store = processor.module.store
    claim = store.claim

    def slow_claim(*args: Any, **kwargs: Any) -> bool:
        claimed = claim(*args, **kwargs)
        if claimed:
            processor.clock.advance(2.5)  # its reply came after the SDK's retries
        return claimed

    monkeypatch.setattr(store, "claim", slow_claim)

    # WHEN the retry takes the hop once the claim ends, and its claim write is slow
    with pytest.raises(RuntimeError, match="too late to process a record"):
        processor.invoke(hop_1, request_id="event-1", remaining_ms=6_000)

    # THEN the run is not failed for a setting (no_progress): it waits, unclaimed, for
    # Lambda's next retry, which runs the hop
    run = processor.infra.run(run_id)
    assert (run["status"], run["hop"]) == ("RUNNING", 1) and "lease_owner" not in run
    monkeypatch.setattr(store, "claim", claim)
    processor.clock.advance(60)
    assert processor.invoke(hop_1, request_id="event-1")["outcome"] == "continued"
    processor.drain()
    processor.assert_done(run_id, body)


# --------------------------------------------------------------------------- lost replies


@pytest.mark.parametrize(
    "write",
    ["SET lease_owner", "SET hop = :next", "SET #status = :status"],
    ids=["claim", "checkpoint", "finish"],
)
def test_a_write_whose_reply_was_lost_does_not_stall_the_run(
    processor: Processor, write: str
) -> None:
    # GIVEN a run of three hops, and DynamoDB applying one of a hop's conditional writes
    # (its claim, its checkpoint or the run's end) but losing the reply, so the SDK sends
    # the same request again and that retry meets the write it repeats
    body = lines(2 * RECORDS_PER_HOP + 5)
    record = processor.upload_lines("lost-reply.ndjson", body)
    run_id = processor.start(record)
    client = processor.module.store._client

    # WHEN the hops run
    with first_reply_lost(
        client, "UpdateItem", lambda p: p["UpdateExpression"].startswith(write)
    ) as lost:
        outcomes = [result["outcome"] for result in processor.drain()]

    # THEN the hop took its own write for its own (not for another invocation's claim):
    # no hop reports a lost claim, the next hops were sent, each record counted once, and
    # the run ended DONE
    assert lost, f"no {write!r} write was made"
    assert "lost_claim" not in outcomes and "in_progress" not in outcomes, outcomes
    assert [p["hop"] for p in processor.invoker.payloads] == [1, 2, 3]
    processor.assert_done(run_id, body)
