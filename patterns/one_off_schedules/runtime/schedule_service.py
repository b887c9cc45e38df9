"""One-off schedules: the API's logic, ``POST /schedules`` (record, then schedule) and
``GET /schedules/{id}`` (``DELETE`` is ``schedule_cancel``'s).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from handler_kit.clock import Clock, epoch_seconds, iso_timestamp, utc_now
from handler_kit.errors import IdempotencyKeyReusedError
from handler_kit.responses import StoredResponse
from schedule_models import (
    CONTEXT_ATTRIBUTES,
    InvalidScheduleTimeError,
    ScheduleCreateFailedError,
    ScheduleIdCollisionError,
    ScheduleNotFoundError,
    ScheduleRequest,
    ScheduleSettings,
    ScheduleStatus,
    ScheduleTarget,
)
from schedule_parsing import (
    canonical_json,
    parse_fire_time,
    parse_fire_time_form,
    request_hash,
    schedule_id_for,
)
from schedule_store import Schedules, ScheduleStore
from schedule_views import Render, ScheduleView, Submission

logger = Logger(child=True)


# --------------------------------------------------------------------------- API logic


def target_input(schedule_id: str, request: ScheduleRequest) -> str:
    """The executor's input: the payload and the Scheduler's context attributes.

    The Scheduler replaces each ``<aws.scheduler.*>`` keyword in the whole input text
    when the schedule fires, so the client's payload carries every ``<`` as the JSON
    escape ``\\u003c``: a keyword in a payload string or member name reaches the executor
    as the client wrote it, and only the context attributes below are filled in.

    Examples
    --------
    >>> from schedule_models import ScheduleRequest
    >>> text = target_input("s-1", ScheduleRequest(
    ...     at="2030-01-01T00:00:00Z", payload={"note": "<aws.scheduler.execution-id>"}))
    >>> text.count("<aws.scheduler.execution-id>")  # the context attribute's alone
    1
    >>> json.loads(text)["payload"]
    {'note': '<aws.scheduler.execution-id>'}
    """
    # The Scheduler delivers this as the executor's input: it must stay valid JSON.
    envelope = json.dumps(
        {"schedule_id": schedule_id, "outcome": request.outcome, **CONTEXT_ATTRIBUTES},
        separators=(",", ":"),
        allow_nan=False,
    )
    # "<" occurs only inside JSON strings, where "\u003c" means the same character.
    payload = json.dumps(request.payload, separators=(",", ":"), allow_nan=False)
    escaped = payload.replace("<", "\\u003c")
    return f'{envelope[:-1]},"payload":{escaped}}}'


def new_schedule_item(
    schedule_id: str,
    request: ScheduleRequest,
    *,
    fire_at: datetime,
    now: datetime,
    settings: ScheduleSettings,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The PENDING item written by ``POST /schedules``."""
    created_at = iso_timestamp(now)
    item: dict[str, Any] = {
        "schedule_id": schedule_id,
        "status": ScheduleStatus.PENDING.value,
        "at": iso_timestamp(fire_at),
        "at_epoch": epoch_seconds(fire_at),
        "created_at": created_at,
        "updated_at": created_at,
        # JSON text: payloads may hold floats, which DynamoDB numbers do not take.
        "payload": canonical_json(request.payload),
        "outcome": request.outcome,
        "request_hash": request_hash(request),
        "expires_at": epoch_seconds(fire_at) + settings.retention_days * 86_400,
    }
    if idempotency_key is not None:
        item["idempotency_key"] = idempotency_key
    return item


def schedule_view(
    item: Mapping[str, Any], *, now: datetime, settings: ScheduleSettings
) -> ScheduleView:
    """Client view of a stored item. Past its delivery deadline no event can come any
    more: a record still PENDING, or RUNNING with its lease expired, reads FAILED."""
    at_epoch, now_epoch = int(item["at_epoch"]), epoch_seconds(now)
    if now_epoch < at_epoch + settings.undelivered_after_seconds:
        return ScheduleView(item)
    status = item["status"]
    lapsed = int(item.get("lease_expires_epoch", 0)) < now_epoch
    return ScheduleView(
        item,
        undelivered=status == ScheduleStatus.PENDING.value,
        unfinished=status == ScheduleStatus.RUNNING.value and lapsed,
    )


def get_schedule_view(
    store: ScheduleStore, schedule_id: str, *, now: datetime, settings: ScheduleSettings
) -> ScheduleView:
    """Read a schedule for ``GET /schedules/{id}`` (never writes).

    Raises
    ------
    ScheduleNotFoundError
        If there is no such schedule, or only one past its TTL (not yet deleted).
    """
    item = store.get(schedule_id, now=now)
    if item is None:
        raise ScheduleNotFoundError(f"schedule {schedule_id} not found")
    return schedule_view(item, now=now, settings=settings)


def _create(
    store: ScheduleStore,
    schedules: Schedules,
    item: Mapping[str, Any],
    request: ScheduleRequest,
    fire_at: datetime,
    target: ScheduleTarget,
    *,
    keyed: bool,
    now: datetime,
    clock: Clock,
) -> None:
    schedule_id = str(item["schedule_id"])
    try:
        created = schedules.create(schedule_id, fire_at, target, target_input(schedule_id, request))
    except (BotoCoreError, ClientError):
        logger.exception("CreateSchedule failed", extra={"schedule_id": schedule_id})
        failed_at = clock()
        if fire_at <= failed_at:
            _give_up_past_time(store, schedule_id, keyed=keyed, now=failed_at)
        if keyed:
            # Another attempt with the key may have created the schedule (it answered
            # 201), or a retry will: the record stays PENDING. With no schedule and no
            # retry it reads FAILED not_delivered once the delivery window has passed.
            raise ScheduleCreateFailedError(
                "the schedule could not be created; retry with the same Idempotency-Key"
            ) from None
        # A random id: the record is this attempt's alone, so a 503 means not
        # scheduled. If the schedule exists anyway (a lost response), it fires, finds no
        # record and the cleanup deletes it.
        store.delete_unscheduled(schedule_id)
        raise ScheduleCreateFailedError(
            "the schedule could not be created; retry the request"
        ) from None
    if not created:
        logger.info("schedule already existed (retry of this request)", schedule_id=schedule_id)
    if keyed:
        try:
            marked = store.mark_scheduled(schedule_id)
        except (BotoCoreError, ClientError):
            # The schedule exists but the record does not say so: answer 503, and a
            # retry with the key finds it created (Conflict) and marks it.
            logger.exception("marking the record scheduled failed", schedule_id=schedule_id)
            marked = None
        if marked is False and _withdrawn_if_cancelled(store, schedules, schedule_id, now):
            return
        if not marked:
            # None: the write failed. False: a late retry gave the record up meanwhile
            # (FAILED not_scheduled), and a retry now answers that.
            raise ScheduleCreateFailedError(
                "the schedule could not be recorded; retry with the same Idempotency-Key"
            )


def _give_up_past_time(
    store: ScheduleStore, schedule_id: str, *, keyed: bool, now: datetime
) -> None:
    """A create that failed once ``at`` had passed (the request began just before it, or
    the call took that long; the Scheduler may refuse a time in the past): no retry can
    create it, so the answer is 400 ``invalid_time``, not 503. An unkeyed record is
    removed; a keyed one reads FAILED ``not_scheduled`` unless another attempt with the
    key created the schedule meanwhile (then the caller's 503 stands: a retry answers
    that attempt's 201)."""
    if keyed:
        if not store.mark_not_scheduled(schedule_id, now):
            return
    else:
        store.delete_unscheduled(schedule_id)
    raise InvalidScheduleTimeError(
        "the schedule could not be created before 'at' passed; post it again with a new 'at'"
    )


def _withdrawn_if_cancelled(
    store: ScheduleStore, schedules: Schedules, schedule_id: str, now: datetime
) -> bool:
    """Delete the schedule this attempt created if a DELETE cancelled its record meanwhile.

    The cancel's own DeleteSchedule may have run before the create. The attempt then
    answers the record's first answer, as any retry with the key does; the record reads
    CANCELLED. If this delete fails as well, ``schedule_deleted_at`` is removed so a
    repeated DELETE tries again; should the schedule fire first, the executor finds
    CANCELLED and runs nothing, and ActionAfterCompletion deletes it.
    """
    current = store.get(schedule_id, now=now)
    if current is None or current["status"] != ScheduleStatus.CANCELLED.value:
        return False
    try:
        schedules.delete(schedule_id)
    except (BotoCoreError, ClientError):
        logger.warning("DeleteSchedule of a cancelled schedule failed", exc_info=True)
        store.forget_schedule_deleted(schedule_id)
        return True
    store.record_schedule_deleted(schedule_id, now)
    return True


def submit_schedule(
    store: ScheduleStore,
    schedules: Schedules,
    request: ScheduleRequest,
    *,
    now: datetime,
    settings: ScheduleSettings,
    target: ScheduleTarget,
    caller: str = "anonymous",
    idempotency_key: str | None = None,
    render: Render,
    clock: Clock = utc_now,
) -> Submission:
    """Store a PENDING record, then create its one-time schedule (``POST /schedules``).

    A keyed record keeps its first answer (``render`` of the new schedule): every retry
    with the key, also a concurrent one that lost the put, is answered those bytes.

    The record is written first so a schedule never fires for a record that does not
    exist. If the create fails, an unkeyed record is removed (the client may retry); a
    keyed one stays PENDING for a retry with the key, which creates the schedule or
    finds it created (another attempt with the key may already have answered 201).

    Raises
    ------
    InvalidScheduleTimeError
        ``at`` is unusable (nothing is written).
    IdempotencyKeyReusedError
        The key was used before with a different request.
    ScheduleCreateFailedError
        CreateSchedule failed (an unkeyed record is removed again).
    ScheduleIdCollisionError
        A random id already existed (practically impossible).
    """
    # A malformed `at` is 400 whatever the key; its time window (in the future, within
    # the horizon) is checked for a new schedule only: a keyed retry after `at` replays.
    parse_fire_time_form(request.at, horizon_seconds=settings.horizon_seconds)
    schedule_id = schedule_id_for(caller, idempotency_key)
    if idempotency_key is not None:
        # An expired record of this key (TTL pending) is no answer: create anew.
        existing = store.get(schedule_id, now=now)
        if existing is not None:
            return _replay(
                store,
                schedules,
                existing,
                request,
                now=now,
                target=target,
                render=render,
                clock=clock,
            )
    fire_at = parse_fire_time(request.at, now=now, horizon_seconds=settings.horizon_seconds)
    item = new_schedule_item(
        schedule_id,
        request,
        fire_at=fire_at,
        now=now,
        settings=settings,
        idempotency_key=idempotency_key,
    )
    first = render(ScheduleView(item))
    if idempotency_key is not None:
        item["response"] = first.to_json()
    if not store.put_new(item, now=now):
        existing = store.get(schedule_id, now=now)
        if idempotency_key is None or existing is None:
            raise ScheduleIdCollisionError(f"schedule id {schedule_id} already exists")
        # A concurrent request with the same key won the put.
        return _replay(
            store, schedules, existing, request, now=now, target=target, render=render, clock=clock
        )
    keyed = idempotency_key is not None
    _create(store, schedules, item, request, fire_at, target, keyed=keyed, now=now, clock=clock)
    return Submission(view=ScheduleView(item), created=True, response=first)


def _replay(
    store: ScheduleStore,
    schedules: Schedules,
    existing: Mapping[str, Any],
    request: ScheduleRequest,
    *,
    now: datetime,
    target: ScheduleTarget,
    render: Render,
    clock: Clock = utc_now,
) -> Submission:
    """Answer a retry with the same Idempotency-Key: the first answer, from the record."""
    if existing.get("request_hash") not in (request_hash(request), _legacy_request_hash(request)):
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with a different request body"
        )
    fire_at = datetime.fromtimestamp(int(existing["at_epoch"]), UTC)
    schedule_id = str(existing["schedule_id"])
    if existing["status"] == ScheduleStatus.PENDING.value and not existing.get("scheduled"):
        if fire_at > now:
            # Heals a create that never happened (the first attempt failed, or timed
            # out between the put and the call); CreateSchedule answers Conflict when it
            # did happen, and either way the record is then marked scheduled.
            _create(
                store,
                schedules,
                existing,
                request,
                fire_at,
                target,
                keyed=True,
                now=now,
                clock=clock,
            )
        elif "fired_at" in existing or _still_scheduled(schedules, schedule_id):
            # Created after all (its mark lost, or a record older than the mark): it
            # fired (an executor attempt claimed it, failed and is retried by Lambda; the
            # Scheduler deleted it once delivered) or has yet to. It runs, as the 201 says.
            store.mark_scheduled(schedule_id)
        elif store.mark_not_scheduled(schedule_id, now):
            existing = {
                **existing,
                "status": ScheduleStatus.FAILED.value,
                "error": {"code": "not_scheduled"},
            }
        else:  # marked scheduled or fired meanwhile, or it left PENDING: answer it as it is now
            existing = store.get(schedule_id, now=now) or existing
    if (existing.get("error") or {}).get("code") == "not_scheduled":
        # No attempt ever created it (none answered 201) and its time has passed.
        raise InvalidScheduleTimeError(
            "the schedule could not be created before 'at' passed; post it again with a "
            "new 'at' (and a new Idempotency-Key)"
        )
    view = ScheduleView(existing)
    if "response" in existing:
        return Submission(
            view=view, created=False, response=StoredResponse.from_json(existing["response"])
        )
    # A record written before first answers were stored: answer it as first written.
    return Submission(view=view, created=False, response=render(view))


def _still_scheduled(schedules: Schedules, schedule_id: str) -> bool:
    try:
        return schedules.exists(schedule_id)
    except (BotoCoreError, ClientError):
        logger.exception("GetSchedule failed", extra={"schedule_id": schedule_id})
        raise ScheduleCreateFailedError(
            "the schedule could not be checked; retry with the same Idempotency-Key"
        ) from None


def _legacy_request_hash(request: ScheduleRequest) -> str:
    # The hash of records written before requests were normalized (``at`` as spelled);
    # such records live until their time plus the retention, and still match a retry.
    return hashlib.sha256(canonical_json(request.model_dump()).encode("utf-8")).hexdigest()
