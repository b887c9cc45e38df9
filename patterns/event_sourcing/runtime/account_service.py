"""The account commands and queries: business rules over the event store.

Commands append events with optimistic locking (reload, re-check, retry); queries
never write.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import datetime

from account_models import (
    _EVENT_OF_COMMAND,
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    MAX_BALANCE,
    SNAPSHOT_BUDGET_MS,
    AccountBody,
    AccountEvent,
    AccountNotFoundError,
    AccountSettings,
    AccountState,
    BalanceLimitError,
    CommandBody,
    CommandResult,
    CommandType,
    ConcurrentUpdateError,
    CorruptHistoryError,
    EventType,
    HistoryPage,
    InsufficientFundsError,
)
from account_parsing import (
    account_id_for,
    command_fingerprint,
    decode_cursor,
    encode_cursor,
    idempotency_record_id,
)
from account_store import EventStore, ReplayFoundError, VersionConflictError, idempotency_item
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from handler_kit.clock import Clock, Sleep, iso_timestamp, utc_now
from handler_kit.errors import IdempotencyKeyReusedError
from handler_kit.responses import StoredResponse, stored_json

logger = Logger(child=True)


def open_account(
    store: EventStore,
    *,
    now: datetime,
    caller: str,
    idempotency_key: str | None = None,
    render: Callable[[AccountBody], StoredResponse] | None = None,
) -> CommandResult:
    """Append ``AccountCreated`` (version 1, balance 0) for a new account.

    With an Idempotency-Key the account id is derived from (caller, key), so a retry
    finds the account the first attempt created and appends nothing; it is answered the
    first answer (``render`` of the new account, kept with its creation event) byte for
    byte. Without ``render`` the answer is the account alone, as a 201.
    """
    if render is None:
        render = _plain_opened
    account_id = account_id_for(caller, idempotency_key)
    event = AccountEvent(
        account_id=account_id,
        version=1,
        type=EventType.CREATED,
        amount=0,
        balance=0,
        occurred_at=iso_timestamp(now),
    )
    body = AccountState.opened(event).to_dict()
    first = render(body)
    if store.create(event, response=first if idempotency_key is not None else None):
        return CommandResult(body=body, replayed=False, response=first)
    if idempotency_key is None:
        raise CorruptHistoryError(f"random account id {account_id} already exists")
    # The first attempt's outcome: its answer as sent, kept with the creation event.
    creation = store.creation(account_id)
    if creation is None:
        raise CorruptHistoryError(f"account {account_id} exists but has no creation event")
    opened, stored = creation
    opened_body = AccountState.opened(opened).to_dict()
    # An account opened before answers were kept: its answer built as it was then.
    return CommandResult(body=opened_body, replayed=True, response=stored or render(opened_body))


def _plain_opened(account: AccountBody) -> StoredResponse:
    return stored_json(201, account)


def _decide(state: AccountState, command: CommandType, amount: int, now: datetime) -> AccountEvent:
    """The event ``command`` appends to ``state``, or the business error it violates."""
    if command is CommandType.WITHDRAW:
        if amount > state.balance:
            raise InsufficientFundsError(
                f"withdrawal of {amount} exceeds the balance of {state.balance}"
            )
        balance = state.balance - amount
    else:
        if state.balance + amount > MAX_BALANCE:
            raise BalanceLimitError(f"the balance may not exceed {MAX_BALANCE}")
        balance = state.balance + amount
    return AccountEvent(
        account_id=state.account_id,
        version=state.version + 1,
        type=_EVENT_OF_COMMAND[command],
        amount=amount,
        balance=balance,
        occurred_at=iso_timestamp(now),
    )


def command_response(state: AccountState, event: AccountEvent) -> CommandBody:
    """Body of a successful credit or withdrawal: the new state and the event."""
    return {**state.to_dict(), "event": event.to_dict()}


def _replay(
    store: EventStore, record_id: str, fingerprint: str, now: datetime
) -> CommandResult | None:
    record = store.get_idempotency_record(record_id, now=now)
    if record is None:
        return None
    if record["fingerprint"] != fingerprint:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used for a different command on this account"
        )
    stored: StoredResponse = record["response"]
    return CommandResult(body=json.loads(stored.body), replayed=True, response=stored)


def execute_command(
    store: EventStore,
    account_id: str,
    command: CommandType,
    amount: int,
    *,
    settings: AccountSettings,
    clock: Clock = utc_now,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
    caller: str = "anonymous",
    idempotency_key: str | None = None,
    snapshot_store: EventStore | None = None,
    remaining_ms: Callable[[], int] | None = None,
) -> CommandResult:
    """Credit or withdraw ``amount`` with optimistic locking.

    Each attempt loads the state, checks the rule against it and appends the next
    version conditionally; a lost race reloads and re-checks, so a withdrawal that
    became an overdraft meanwhile is refused, not applied.

    At a snapshot point the snapshot is then written through ``snapshot_store`` (the
    same table on a client that gives up quickly; ``store`` when None), unless
    ``remaining_ms()`` (the invocation's time left; no limit when None) is below
    ``SNAPSHOT_BUDGET_MS``. Its failure never fails the committed command.

    Raises
    ------
    AccountNotFoundError
        No such account.
    InsufficientFundsError, BalanceLimitError
        The rule refused the command (nothing written).
    ConcurrentUpdateError
        Every one of ``settings.max_append_attempts`` attempts lost a race.
    IdempotencyKeyReusedError
        The key was used for a different command.
    """
    rng = rng or random.Random()
    record_id = fingerprint = None
    if idempotency_key is not None:
        record_id = idempotency_record_id(caller, account_id, idempotency_key)
        fingerprint = command_fingerprint(command, amount)
        # Before the rule: a retried withdrawal must replay its first outcome even when
        # that outcome has since spent the funds the retry would need.
        replayed = _replay(store, record_id, fingerprint, clock())
        if replayed is not None:
            return replayed
    for attempt in range(settings.max_append_attempts):
        state = store.load(account_id, snapshot_interval=settings.snapshot_interval)
        if state is None:
            raise AccountNotFoundError(f"account {account_id} not found")
        now = clock()
        try:
            event = _decide(state, command, amount, now)
        except (InsufficientFundsError, BalanceLimitError):
            # A keyed twin may have committed between the record lookup above and this
            # load: the state then holds its outcome, and that outcome (the record,
            # written in the same transaction) is the answer, not a refusal of it.
            if record_id is not None and fingerprint is not None:
                replayed = _replay(store, record_id, fingerprint, clock())
                if replayed is not None:
                    return replayed
            raise
        new_state = state.apply(event)
        body = command_response(new_state, event)
        # Serialized once: the record keeps exactly the bytes this answer sends.
        response = stored_json(200, body)
        record = None
        if record_id is not None and fingerprint is not None:
            record = idempotency_item(
                record_id,
                fingerprint=fingerprint,
                response=response,
                now=now,
                ttl=settings.idempotency_ttl_seconds,
            )
        try:
            store.append(event, idempotency_record=record, now=now)
        except VersionConflictError:
            logger.info("version conflict; reloading", version=event.version, attempt=attempt + 1)
            if attempt + 1 < settings.max_append_attempts:
                sleep(rng.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))
            continue
        except ReplayFoundError:
            # A concurrent twin with the same key committed first.
            assert record_id is not None and fingerprint is not None
            replayed = _replay(store, record_id, fingerprint, clock())
            if replayed is None:
                raise ConcurrentUpdateError("the request changed while it was read") from None
            return replayed
        if event.version % settings.snapshot_interval == 0:
            _refresh_snapshot(snapshot_store or store, new_state, remaining_ms)
        return CommandResult(body=body, replayed=False, response=response)
    raise ConcurrentUpdateError(
        f"account {account_id} changed during each of {settings.max_append_attempts} attempts"
    )


def _refresh_snapshot(
    store: EventStore, state: AccountState, remaining_ms: Callable[[], int] | None
) -> None:
    """Best effort: a lost snapshot only makes later reads fold more events.

    The event is committed by now, so nothing here may turn the command into an error:
    a 503 (or a function timeout) would make a client retry a command that was applied.
    """
    if remaining_ms is not None and remaining_ms() < SNAPSHOT_BUDGET_MS:
        logger.warning("too little time left; snapshot skipped", version=state.version)
        return
    try:
        if not store.put_snapshot(state):
            logger.info("a newer snapshot exists", version=state.version)
    except (ClientError, BotoCoreError):
        # BotoCoreError: a transport failure (read timeout, connection lost or refused).
        logger.warning("snapshot write failed; reads stay correct", exc_info=True)


# --------------------------------------------------------------------------- queries


def get_account(store: EventStore, account_id: str, *, settings: AccountSettings) -> AccountState:
    """Current state for ``GET /accounts/{id}`` (never writes).

    Raises
    ------
    AccountNotFoundError
        If there is no such account.
    """
    state = store.load(account_id, snapshot_interval=settings.snapshot_interval)
    if state is None:
        raise AccountNotFoundError(f"account {account_id} not found")
    return state


def get_history(
    store: EventStore, account_id: str, *, cursor: str | None, limit: int
) -> HistoryPage:
    """One page of the history, oldest first.

    Raises
    ------
    InvalidRequestError
        A malformed cursor.
    AccountNotFoundError
        If there is no such account.
    """
    after = decode_cursor(cursor, account_id)
    events, more = store.history(account_id, after_version=after, limit=limit)
    if not events and not store.exists(account_id):
        raise AccountNotFoundError(f"account {account_id} not found")
    next_cursor = encode_cursor(account_id, events[-1].version) if more else None
    return HistoryPage(account_id=account_id, events=events, next_cursor=next_cursor)
