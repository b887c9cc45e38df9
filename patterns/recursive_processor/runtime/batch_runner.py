"""Recursive processor: one hop of a run (claim, read and process, commit, hand over).

Plain Python (no Lambda types) so it can be tested directly: ``batch_processor.py``
only parses the hop request, calls ``run_hop`` and records the outcome. The steps
after the claim pass one ``HopState`` along; every write they make is conditional on
its claim (see ``batch_store.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from batch_claims import (
    ClaimHolder,
    claim_holder,
    held_by_earlier_attempt,
    pause_for_claim,
    time_to_take_over,
)
from batch_hops import HopEnvironment, dispatch_pending_hop, send_hop
from batch_models import (
    HopCommit,
    HopOutcome,
    HopRequest,
    HopState,
    RunEnding,
    RunStatus,
    epoch_ms,
)
from batch_records import HopTally, InputRecord, interpret_line
from handler_kit import status_transitions
from handler_kit.clock import iso_timestamp
from line_reader import (
    LineScanCutShortError,
    ObjectChangedError,
    ObjectMissingError,
    ObjectRangeReader,
    ObjectUnreadableError,
)

logger = Logger(child=True)

_CHECKSUM_MODULUS = 2**64
#: The run's failure code for each way the object can stop being readable.
_UNREADABLE_CODES: dict[type[Exception], str] = {
    ObjectChangedError: "object_changed",
    ObjectMissingError: "object_missing",
    ObjectUnreadableError: "object_unreadable",
}


def _check_request(request: HopRequest, item: Mapping[str, Any] | None) -> HopOutcome | None:
    """Why this request must not run (an outcome), or None if it is the run's next hop."""
    if item is None:
        return HopOutcome.MISSING
    if (item["bucket"], item["key"], item["etag"]) != (request.bucket, request.key, request.etag):
        return HopOutcome.STALE
    if item["status"] != RunStatus.RUNNING.value or int(item["hop"]) > request.hop:
        return HopOutcome.DUPLICATE
    if int(item["hop"]) < request.hop or int(item["offset"]) != request.offset:
        return HopOutcome.STALE
    return None


def run_hop(env: HopEnvironment, request: HopRequest) -> HopOutcome:
    """Run one hop of a run: claim, read and process, then commit and hand over.

    Parameters
    ----------
    env : HopEnvironment
        Clients, settings, the invocation's remaining time and fakes for time.
    request : HopRequest
        The hop to run.

    Returns
    -------
    HopOutcome
        What happened. Only CONTINUED, DONE and FAILED changed the run.

    Raises
    ------
    HopHeldByEarlierAttemptError
        An earlier attempt of this event holds the hop and waiting for it cannot help,
        or its claim ended too late for this invocation to run the hop (see
        ``batch_claims``): Lambda retries the event later.
    """
    store = env.store
    pause_s = 0.0
    waited = False
    while True:
        # An expired run reads as missing: its hop is not run (nor its successor re-sent).
        item = store.get(request.run_id, now=env.clock())
        refusal = _check_request(request, item)
        if refusal is not None:
            return _refused(env, request, item, refusal)
        assert item is not None
        state = HopState.of(item, owner=status_transitions.lease_owner_for(env.request_id))
        now_ms = epoch_ms(env.clock())
        # A delivery that has waited takes the hop only with the time to run it.
        if (not waited or time_to_take_over(env)) and store.claim(
            state.run_id,
            hop=state.hop,
            offset=state.offset,
            owner=state.owner,
            now_ms=now_ms,
            expires_ms=now_ms + env.remaining_ms(),
        ):
            break
        item = store.get(request.run_id, now=env.clock())
        if _check_request(request, item) is not None:
            continue  # the run moved on meanwhile: answered at the top
        holder = claim_holder(item, request, now_ms=now_ms, request_id=env.request_id)
        if holder is ClaimHolder.ANOTHER_EVENT:
            logger.info("hop held by another invocation", run_id=request.run_id, hop=request.hop)
            return HopOutcome.IN_PROGRESS
        assert item is not None
        pause_s = pause_for_claim(
            env,
            request,
            holder=holder,
            claim_ends_ms=int(item.get("lease_expires_ms", 0)),
            last_s=pause_s,
        )
        waited = True
    try:
        return _process_claimed(env, state, waited=waited)
    except BaseException:
        # Let Lambda's retry of this event take the hop at once instead of waiting
        # for the claim to expire.
        store.release(state.run_id, owner=state.owner)
        raise


def _refused(
    env: HopEnvironment, request: HopRequest, item: Mapping[str, Any] | None, refusal: HopOutcome
) -> HopOutcome:
    """The outcome of a request that is not the run's next hop; re-sends the next hop if
    the invocation that committed this one failed before sending it."""
    if (
        refusal is HopOutcome.DUPLICATE
        and item is not None
        and int(item["hop"]) == request.hop + 1
        and dispatch_pending_hop(env.store, env.sender, item)
    ):
        return HopOutcome.REDISPATCHED
    logger.info("hop not run", run_id=request.run_id, hop=request.hop, outcome=refusal.value)
    return refusal


def _read_records(
    env: HopEnvironment, state: HopState, reader: ObjectRangeReader, tally: HopTally
) -> tuple[int, bool]:
    """Process lines into ``tally`` until the object ends or time runs short.

    Returns the offset after the last line processed and whether it is the object's end;
    raises the reader's errors when the object changed, vanished or cannot be read.
    """
    settings = env.settings
    committed = state.offset
    at_end = committed >= state.size
    lines = reader.lines(
        state.offset, keep_scanning=lambda: env.remaining_ms() >= settings.safety_margin_ms
    )
    try:
        while not at_end and env.remaining_ms() >= settings.safety_margin_ms:
            line = next(lines, None)
            if line is None:
                return committed, True
            result = interpret_line(line, max_record_bytes=settings.max_record_bytes)
            if result is not None:
                tally.add(result)
                if settings.record_work_ms and isinstance(result, InputRecord):
                    env.sleep(settings.record_work_ms / 1000)
            committed = line.end
            at_end = committed >= state.size
    finally:
        lines.close()
    return committed, at_end


def _process_claimed(env: HopEnvironment, state: HopState, *, waited: bool) -> HopOutcome:
    settings = env.settings
    reader = ObjectRangeReader(
        env.s3,
        bucket=state.bucket,
        key=state.key,
        etag=state.etag,
        size=state.size,
        range_bytes=settings.range_bytes,
        max_record_bytes=settings.max_record_bytes,
    )
    tally = HopTally()
    cut_short: LineScanCutShortError | None = None
    try:
        committed, at_end = _read_records(env, state, reader, tally)
    except LineScanCutShortError as exc:
        # The lines before it are processed; the next hop starts at the long line with
        # a whole hop's time, and fails the run if that is not enough either.
        committed, at_end, cut_short = exc.line_start, False, exc
    except (ObjectChangedError, ObjectMissingError, ObjectUnreadableError) as exc:
        # This hop's records belong to no consistent version: keep none of them.
        discarded = HopTally(bytes_read=reader.bytes_read)
        commit = HopCommit(
            new_offset=state.offset, tally=discarded, errors_key=None, now=env.clock()
        )
        return _fail(env, state, commit, _UNREADABLE_CODES[type(exc)], str(exc))
    tally.bytes_read = reader.bytes_read

    if at_end:
        return _complete(env, state, tally, committed)
    if committed == state.offset:
        if waited:
            # Claimed late, after an earlier attempt's claim: no fault of the settings.
            raise held_by_earlier_attempt(
                state.run_id, state.hop, "it was taken too late to process a record"
            )
        commit = HopCommit(new_offset=committed, tally=tally, errors_key=None, now=env.clock())
        if cut_short is not None:
            message = (
                f"hop {state.hop} could not find the end of the line at byte {committed} "
                f"of {state.size}: a line longer than one hop can scan "
                f"({cut_short.scanned} bytes scanned)"
            )
            return _fail(env, state, commit, "line_too_long", message)
        message = (
            f"hop {state.hop} processed nothing at byte {committed} of {state.size}: the "
            f"safety margin ({settings.safety_margin_ms} ms) leaves no time for a record"
        )
        return _fail(env, state, commit, "no_progress", message)
    errors_key = _write_errors(env, state, tally)
    commit = HopCommit(new_offset=committed, tally=tally, errors_key=errors_key, now=env.clock())
    if state.hop >= settings.max_hops:
        message = f"hop limit {settings.max_hops} reached at byte {committed} of {state.size}"
        return _fail(env, state, commit, "hop_limit", message)

    if not env.store.checkpoint(state, commit):
        logger.warning("lost the claim before the checkpoint", run_id=state.run_id)
        return HopOutcome.LOST_CLAIM
    logger.info(
        "hop committed",
        run_id=state.run_id,
        hop=state.hop,
        offset=committed,
        size=state.size,
        records=tally.records,
        errors=tally.errors,
        bytes_read=tally.bytes_read,
    )
    # Nothing can have sent the next hop yet: a hop is sent only for the run's current hop
    # (after its predecessor's checkpoint, or again by a duplicate that finds it unsent),
    # so dispatched_hop never passes hop, and this claim held hop = state.hop.
    send_hop(env.store, env.sender, state.next_request(committed))
    return HopOutcome.CONTINUED


def _write_errors(env: HopEnvironment, state: HopState, tally: HopTally) -> str | None:
    """Write the hop's bad records as its errors object; its key, or None if there are none."""
    if not tally.bad_records:
        return None
    key = env.settings.errors_key(state.run_id, state.hop)
    body = "".join(f"{bad.to_json()}\n" for bad in tally.bad_records).encode("utf-8")
    env.s3.put_object(
        Bucket=env.settings.output_bucket,
        Key=key,
        Body=body,
        ContentType="application/x-ndjson",
    )
    return key


def summary_document(
    state: HopState, tally: HopTally, *, finished: datetime, error_objects: list[str]
) -> dict[str, Any]:
    """The summary object of a DONE run: totals over every hop plus this last one.

    Parameters
    ----------
    state : HopState
        The last hop, with the totals of the hops before it.
    tally : HopTally
        What the last hop processed.
    finished : datetime
        When the run ends.
    error_objects : list of str
        The keys of every hop's errors object, this one's included.

    Returns
    -------
    dict
        The JSON document written as the run's summary.
    """
    checksum = (state.checksum_sum + tally.checksum) % _CHECKSUM_MODULUS
    return {
        "run_id": state.run_id,
        "status": RunStatus.DONE.value,
        "source": {
            "bucket": state.bucket,
            "key": state.key,
            "etag": state.etag,
            "size": state.size,
        },
        "records": state.records + tally.records,
        "errors": state.errors + tally.errors,
        "amount_total": state.amount_total + tally.amount,
        "checksum": f"{checksum:016x}",
        "hops": state.hop,
        "bytes_read": state.bytes_read + tally.bytes_read,
        "started_at": state.started_at,
        "finished_at": iso_timestamp(finished),
        "duration_ms": epoch_ms(finished) - state.started_at_ms,
        "error_objects": error_objects,
    }


def _complete(env: HopEnvironment, state: HopState, tally: HopTally, committed: int) -> HopOutcome:
    """Write the summary, then end the run DONE."""
    errors_key = _write_errors(env, state, tally)
    finished = env.clock()
    error_objects = [*state.error_objects, *([errors_key] if errors_key else [])]
    summary = summary_document(state, tally, finished=finished, error_objects=error_objects)
    summary_key = env.settings.summary_key(state.run_id)
    # Written before the run says DONE, so DONE always has its summary; a retry of a
    # hop that failed after this write rewrites the same totals.
    env.s3.put_object(
        Bucket=env.settings.output_bucket,
        Key=summary_key,
        Body=json.dumps(summary, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    commit = HopCommit(new_offset=committed, tally=tally, errors_key=errors_key, now=finished)
    ending = RunEnding(
        status=RunStatus.DONE, duration_ms=summary["duration_ms"], summary_key=summary_key
    )
    if not env.store.finish(state, commit, ending):
        logger.warning("lost the claim before finishing", run_id=state.run_id)
        return HopOutcome.LOST_CLAIM
    logger.info(
        "run done",
        run_id=state.run_id,
        hops=state.hop,
        records=summary["records"],
        errors=summary["errors"],
        bytes_read=summary["bytes_read"],
        duration_ms=summary["duration_ms"],
    )
    return HopOutcome.DONE


def _fail(
    env: HopEnvironment, state: HopState, commit: HopCommit, code: str, message: str
) -> HopOutcome:
    """End the run FAILED with reason ``code`` at ``commit`` (its ``now`` is the end)."""
    ending = RunEnding(
        status=RunStatus.FAILED,
        duration_ms=epoch_ms(commit.now) - state.started_at_ms,
        reason={"code": code, "message": message},
    )
    if not env.store.finish(state, commit, ending):
        logger.warning("lost the claim before failing the run", run_id=state.run_id)
        return HopOutcome.LOST_CLAIM
    logger.warning("run failed", run_id=state.run_id, hop=state.hop, reason=code, detail=message)
    return HopOutcome.FAILED
