"""Event-sourced bank accounts: commands append events, state is folded from them.

Everything here is plain Python (no Lambda types) so it can be tested directly: the
handlers in ``account_api.py`` and ``account_publisher.py`` only parse events, call
these functions and shape responses.

Table layout (partition key ``account_id`` S, sort key ``version`` N)::

    account_id=<uuid>  version=1..n   kind=event     immutable events, contiguous versions
    account_id=<uuid>  version=0      kind=snapshot  state as of ``snapshot_version``
    account_id=idempotency#<sha256>  version=0  kind=idempotency  outcome of a keyed command

A command reads the state (snapshot + the events after it), checks the business rule
and appends version n+1 with ``attribute_not_exists``: if another command appended n+1
first, the write fails, and the command reloads, re-checks and retries (optimistic
locking). Every ``snapshot_interval``-th event also refreshes the snapshot, with a
condition that never lets it move backwards; a missing or late snapshot only makes
the next read longer.

Money is an integer number of minor units (e.g. cents): stored as DynamoDB numbers
(exact decimals), never as floats.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import random
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from handler_kit import requests, ttl
from handler_kit.clock import Clock, Sleep, iso_timestamp, parse_timestamp, utc_now
from handler_kit.config import int_fields_from_env
from handler_kit.dynamodb import error_code, is_condition_failure, to_attribute_values
from handler_kit.errors import IdempotencyKeyReusedError as IdempotencyKeyReusedError
from handler_kit.errors import InvalidRequestError as InvalidRequestError
from handler_kit.errors import PayloadTooLargeError
from handler_kit.responses import StoredResponse, stored_json
from handler_kit.strict_json import parse_model
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb,events] is installed, Any otherwise
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient

logger = Logger(child=True)

#: Largest amount of one credit or withdrawal, in minor units (1,000,000.00 in a
#: currency with two decimals).
MAX_AMOUNT = 100_000_000
#: Largest balance an account may reach, in minor units. Below 2**53 so every balance
#: is exact in JSON parsers that read numbers as doubles (JavaScript, many others).
MAX_BALANCE = 1_000_000_000_000_000
#: Largest accepted command body, measured on the raw (base64-decoded) bytes.
MAX_BODY_BYTES = 1024
#: Fixed namespace for deterministic account ids derived from an Idempotency-Key.
ACCOUNT_ID_NAMESPACE = uuid.UUID("0b7f6f5e-2f4c-5f1a-8d0e-6a3c9e1b7d42")
#: Sort key of an account's snapshot item; events start at version 1.
SNAPSHOT_VERSION_KEY = 0
#: Partition key prefix of idempotency records (never a UUID, so never an account).
IDEMPOTENCY_PREFIX = "idempotency#"
#: Backoff between optimistic-locking attempts: full jitter, base * 2**attempt, capped.
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.2

_HEX = "[0-9a-fA-F]"
_UUID_RE = re.compile(rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")
_CURSOR_RE = re.compile(r"^v1:([1-9][0-9]{0,17})$")


# --------------------------------------------------------------------------- errors


class AccountNotFoundError(LookupError):
    """No account with this id exists (HTTP 404)."""


class InsufficientFundsError(ValueError):
    """A withdrawal would overdraw the account (HTTP 409, nothing written)."""


class BalanceLimitError(ValueError):
    """A credit would take the balance above ``MAX_BALANCE`` (HTTP 409, nothing written)."""


class ConcurrentUpdateError(RuntimeError):
    """Every optimistic-locking attempt lost to another writer (HTTP 409, retryable)."""


class CorruptHistoryError(RuntimeError):
    """The stored events do not form a contiguous history (a bug or a manual edit)."""


class InvalidStreamRecordError(ValueError):
    """A stream record is not an account event (poison record for the publisher)."""


class PublishFailedError(RuntimeError):
    """EventBridge did not accept a domain event; the stream record is retried."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class AccountSettings:
    """Tunables of the account API.

    Attributes
    ----------
    snapshot_interval : int
        K: every K-th event refreshes the snapshot, so a read folds fewer than K events.
    max_append_attempts : int
        Optimistic-locking attempts of one command before it answers 409.
    idempotency_ttl_seconds : int
        How long an Idempotency-Key is remembered.
    history_page_size, max_history_page_size : int
        Default and largest ``limit`` of ``GET /accounts/{id}/events``.
    """

    snapshot_interval: int = 10
    max_append_attempts: int = 8
    idempotency_ttl_seconds: int = 86_400
    history_page_size: int = 25
    max_history_page_size: int = 100

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AccountSettings:
        """Read ``SNAPSHOT_INTERVAL``, ``MAX_APPEND_ATTEMPTS`` and ``IDEMPOTENCY_TTL_SECONDS``.

        Raises
        ------
        ValueError
            If a variable is set but is not a positive integer.
        """
        env = os.environ if environ is None else environ
        return cls(
            **int_fields_from_env(
                cls,
                {
                    "snapshot_interval": "SNAPSHOT_INTERVAL",
                    "max_append_attempts": "MAX_APPEND_ATTEMPTS",
                    "idempotency_ttl_seconds": "IDEMPOTENCY_TTL_SECONDS",
                },
                env,
            ),
        )


# --------------------------------------------------------------------------- time


def parse_iso_timestamp(value: str) -> datetime:
    """Inverse of :func:`iso_timestamp` (the one timestamp parser, ``clock.parse_timestamp``)."""
    return parse_timestamp(value).astimezone(UTC)


# --------------------------------------------------------------------------- model


class EventType(StrEnum):
    """What happened to an account; also the EventBridge ``detail-type``."""

    CREATED = "AccountCreated"
    CREDITED = "AccountCredited"
    WITHDRAWN = "AccountWithdrawn"


class CommandType(StrEnum):
    """The commands that change an account after it was opened."""

    CREDIT = "credit"
    WITHDRAW = "withdraw"


_EVENT_OF_COMMAND = {
    CommandType.CREDIT: EventType.CREDITED,
    CommandType.WITHDRAW: EventType.WITHDRAWN,
}


@dataclass(frozen=True)
class AccountEvent:
    """One immutable event.

    ``balance`` is the balance right after the event: computed under the optimistic
    lock, so it is exact, and carried so stream consumers need not fold the history.
    """

    account_id: str
    version: int
    type: EventType
    amount: int
    balance: int
    occurred_at: str

    @property
    def event_id(self) -> str:
        """Deterministic id ``<account_id>:<version>``: the same event always has it."""
        return f"{self.account_id}:{self.version}"

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (low-level attribute values)."""
        return {
            "account_id": {"S": self.account_id},
            "version": {"N": str(self.version)},
            "kind": {"S": "event"},
            "type": {"S": self.type.value},
            "amount": {"N": str(self.amount)},
            "balance": {"N": str(self.balance)},
            "occurred_at": {"S": self.occurred_at},
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> AccountEvent:
        """Parse a DynamoDB event item (also a stream NewImage).

        Raises
        ------
        InvalidStreamRecordError
            If the item is not a well-formed account event.
        """
        try:
            if item["kind"]["S"] != "event":
                raise InvalidStreamRecordError(f"not an event item: kind={item['kind']['S']!r}")
            event = cls(
                account_id=item["account_id"]["S"],
                version=_exact_int(item["version"]["N"]),
                type=EventType(item["type"]["S"]),
                amount=_exact_int(item["amount"]["N"]),
                balance=_exact_int(item["balance"]["N"]),
                occurred_at=item["occurred_at"]["S"],
            )
            parse_iso_timestamp(event.occurred_at)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidStreamRecordError):
                raise
            raise InvalidStreamRecordError(f"malformed event item: {exc!r}") from None
        if event.version < 1 or event.amount < 0 or event.balance < 0:
            raise InvalidStreamRecordError(f"event {event.event_id} has out-of-range numbers")
        return event

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (history pages, command responses, domain event detail)."""
        return {
            "event_id": self.event_id,
            "account_id": self.account_id,
            "version": self.version,
            "type": self.type.value,
            "amount": self.amount,
            "balance": self.balance,
            "occurred_at": self.occurred_at,
        }


def _exact_int(text: str) -> int:
    """A DynamoDB number that must be an integer ("10", not "10.5")."""
    if not re.fullmatch(r"-?[0-9]+", text):
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


@dataclass(frozen=True)
class AccountState:
    """An account as of ``version``: the fold of its events."""

    account_id: str
    version: int
    balance: int
    created_at: str
    updated_at: str

    @classmethod
    def opened(cls, event: AccountEvent) -> AccountState:
        """The state right after the ``AccountCreated`` event."""
        if event.version != 1 or event.type is not EventType.CREATED:
            raise CorruptHistoryError(f"account {event.account_id} does not start with creation")
        return cls(
            account_id=event.account_id,
            version=1,
            balance=event.amount,
            created_at=event.occurred_at,
            updated_at=event.occurred_at,
        )

    def apply(self, event: AccountEvent) -> AccountState:
        """The state after ``event``, which must be the next version."""
        if event.version != self.version + 1:
            raise CorruptHistoryError(
                f"account {self.account_id}: expected version {self.version + 1},"
                f" found {event.version}"
            )
        if event.type is EventType.CREDITED:
            balance = self.balance + event.amount
        elif event.type is EventType.WITHDRAWN:
            balance = self.balance - event.amount
        else:
            raise CorruptHistoryError(f"account {self.account_id}: second creation event")
        return replace(self, version=event.version, balance=balance, updated_at=event.occurred_at)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready body of ``GET /accounts/{id}``."""
        return {
            "account_id": self.account_id,
            "balance": self.balance,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def fold(state: AccountState | None, events: Iterable[AccountEvent]) -> AccountState | None:
    """Apply ``events`` (ascending versions) to ``state``; None stays None without events."""
    for event in events:
        state = AccountState.opened(event) if state is None else state.apply(event)
    return state


@dataclass(frozen=True)
class CommandResult:
    """Outcome of a command: the response body, and whether it was an idempotent replay.

    Attributes
    ----------
    body : dict
        The body as data (for logs and metrics).
    replayed : bool
        True when a retry with the same key was answered from the idempotency record.
    response : StoredResponse or None
        The answer exactly as first sent: a replay sends these bytes, never a
        re-serialization of ``body`` (None for ``open_account``, whose answer is built
        from the creation event, which is the same every time).
    """

    body: dict[str, Any]
    replayed: bool
    response: StoredResponse | None = None


@dataclass(frozen=True)
class HistoryPage:
    """One page of ``GET /accounts/{id}/events``."""

    account_id: str
    events: list[AccountEvent]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "events": [event.to_dict() for event in self.events],
            "next_cursor": self.next_cursor,
        }


# --------------------------------------------------------------------------- parsing


def decode_body(body: str | None, *, is_base64_encoded: bool) -> bytes:
    """Return the raw command body bytes (at most ``MAX_BODY_BYTES``).

    This API answers an oversize body like any other bad body (400
    ``invalid_request``), so the size error is raised as an ``InvalidRequestError``.
    """
    try:
        return requests.decode_body(
            body, is_base64_encoded=is_base64_encoded, max_bytes=MAX_BODY_BYTES
        )
    except PayloadTooLargeError as exc:
        raise InvalidRequestError(str(exc)) from None


class AmountRequest(BaseModel):
    """The body of ``POST /accounts/{id}/credit`` and ``/withdraw``.

    Strict: ``10`` only, never ``10.0``, ``"10"`` or ``true``; no extra fields.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    amount: Annotated[int, Field(ge=1, le=MAX_AMOUNT)]


class OpenRequest(BaseModel):
    """The (optional) body of ``POST /accounts``: an empty JSON object."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def parse_amount_request(raw: bytes) -> AmountRequest:
    """Validate a credit or withdrawal body.

    Raises
    ------
    InvalidRequestError
        Empty body, malformed JSON, missing/extra fields, a non-integer amount or one
        outside ``1..MAX_AMOUNT``.
    """
    if not raw.strip():
        raise InvalidRequestError(
            f"request body is required: {{'amount': <integer minor units 1..{MAX_AMOUNT}>}}"
        )
    try:
        return parse_model(AmountRequest, raw)
    except ValidationError as exc:
        raise InvalidRequestError(requests.describe_validation_error(exc)) from None


def parse_open_request(raw: bytes) -> OpenRequest:
    """Validate a ``POST /accounts`` body: none, or ``{}``.

    Raises
    ------
    InvalidRequestError
        For anything else.
    """
    if not raw.strip():
        return OpenRequest()
    try:
        return parse_model(OpenRequest, raw)
    except ValidationError as exc:
        raise InvalidRequestError(requests.describe_validation_error(exc)) from None


def parse_account_id(value: str) -> str:
    """Return ``value`` as a canonical lower-case UUID string.

    Raises
    ------
    InvalidRequestError
        If it is not a UUID.
    """
    if not _UUID_RE.fullmatch(value):
        raise InvalidRequestError("account_id must be a UUID")
    return value.lower()


def parse_limit(value: str | None, settings: AccountSettings) -> int:
    """``limit`` query parameter of the history: 1..``max_history_page_size``.

    Raises
    ------
    InvalidRequestError
        If it is not an integer in range.
    """
    if value is None:
        return settings.history_page_size
    if not re.fullmatch(r"[0-9]{1,4}", value) or not (
        1 <= int(value) <= settings.max_history_page_size
    ):
        raise InvalidRequestError(
            f"limit must be an integer from 1 to {settings.max_history_page_size}"
        )
    return int(value)


def encode_cursor(after_version: int) -> str:
    """An opaque cursor: the history continues after ``after_version``."""
    return base64.urlsafe_b64encode(f"v1:{after_version}".encode("ascii")).decode("ascii")


def decode_cursor(value: str | None) -> int:
    """The version a history page starts after (0 without a cursor).

    Raises
    ------
    InvalidRequestError
        If the cursor was not made by :func:`encode_cursor`.
    """
    if value is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(value.encode("ascii")).decode("ascii")
    except (binascii.Error, ValueError, UnicodeError):
        raise InvalidRequestError("cursor is not valid") from None
    match = _CURSOR_RE.fullmatch(text)
    if match is None:
        raise InvalidRequestError("cursor is not valid")
    return int(match.group(1))


def account_id_for(caller: str, idempotency_key: str | None) -> str:
    """New account id: uuid5 over (caller, key) when a key is given, else uuid4."""
    return requests.resource_id_for(ACCOUNT_ID_NAMESPACE, caller, idempotency_key)


def idempotency_record_id(caller: str, account_id: str, idempotency_key: str) -> str:
    """Partition key of the idempotency record of a keyed command (scoped by caller)."""
    digest = hashlib.sha256(f"{caller}\n{account_id}\n{idempotency_key}".encode()).hexdigest()
    return f"{IDEMPOTENCY_PREFIX}{digest}"


def command_fingerprint(command: CommandType, amount: int) -> str:
    """What a keyed command asked for; a retry with the same key must match it."""
    return f"{command.value}:{amount}"


# --------------------------------------------------------------------------- storage


class VersionConflictError(Exception):
    """Internal: the version this command wanted to append already exists."""


class ReplayFoundError(Exception):
    """Internal: the Idempotency-Key of this command was used by a committed command."""


class EventStore:
    """The event table.

    Parameters
    ----------
    client : DynamoDBClient
        A low-level boto3 DynamoDB client.
    table_name : str
        Table with partition key ``account_id`` (S), sort key ``version`` (N) and TTL
        attribute ``expires_at`` (idempotency records only).
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    # ----------------------------------------------------------------- reads

    def load(self, account_id: str, *, snapshot_interval: int) -> AccountState | None:
        """Current state: the snapshot plus the events after it (None: no such account).

        Two requests, at most K + 1 items: a GetItem of the snapshot, and one Query page
        of ``snapshot_interval + 1`` events, enough also in the moment between the K-th
        event and its snapshot write. A snapshot missing for longer adds pages, never a
        wrong answer, because the fold starts from whatever version the snapshot covers.
        """
        snapshot = self._get_snapshot(account_id)
        state = snapshot
        after = snapshot.version if snapshot is not None else 0
        request: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "account_id = :id AND version > :after",
            "ExpressionAttributeValues": {":id": {"S": account_id}, ":after": {"N": str(after)}},
            "ConsistentRead": True,
            "Limit": snapshot_interval + 1,
        }
        while True:
            response = self._client.query(**request)
            state = fold(state, (AccountEvent.from_item(item) for item in response["Items"]))
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return state
            request["ExclusiveStartKey"] = last_key

    def _get_snapshot(self, account_id: str) -> AccountState | None:
        item = self._client.get_item(
            TableName=self._table_name,
            Key={"account_id": {"S": account_id}, "version": {"N": str(SNAPSHOT_VERSION_KEY)}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        return AccountState(
            account_id=account_id,
            version=_exact_int(item["snapshot_version"]["N"]),
            balance=_exact_int(item["balance"]["N"]),
            created_at=item["created_at"]["S"],
            updated_at=item["updated_at"]["S"],
        )

    def history(
        self, account_id: str, *, after_version: int, limit: int
    ) -> tuple[list[AccountEvent], bool]:
        """Events after ``after_version``, oldest first; True when more follow."""
        response = self._client.query(
            TableName=self._table_name,
            KeyConditionExpression="account_id = :id AND version > :after",
            ExpressionAttributeValues={
                ":id": {"S": account_id},
                ":after": {"N": str(max(after_version, SNAPSHOT_VERSION_KEY))},
            },
            ConsistentRead=True,
            # One more than asked tells whether another page exists without a second query.
            Limit=limit + 1,
        )
        events = [AccountEvent.from_item(item) for item in response["Items"]]
        return events[:limit], len(events) > limit

    def exists(self, account_id: str) -> bool:
        """True when the account's creation event exists."""
        item = self._client.get_item(
            TableName=self._table_name,
            Key={"account_id": {"S": account_id}, "version": {"N": "1"}},
            ConsistentRead=True,
            ProjectionExpression="version",
        ).get("Item")
        return item is not None

    def get_idempotency_record(self, record_id: str, *, now: datetime) -> dict[str, Any] | None:
        """The stored outcome of a keyed command; None if none, or expired at ``now``.

        An expired record (TTL pending) no longer binds the key: the command runs anew.
        """
        item = self._client.get_item(
            TableName=self._table_name,
            Key={"account_id": {"S": record_id}, "version": {"N": str(SNAPSHOT_VERSION_KEY)}},
            ConsistentRead=True,
        ).get("Item")
        item = ttl.live(item, now)
        if item is None:
            return None
        return {
            "fingerprint": item["fingerprint"]["S"],
            "response": _stored_response(item["response"]["S"]),
        }

    # ----------------------------------------------------------------- writes

    def append(
        self,
        event: AccountEvent,
        *,
        idempotency_record: dict[str, Any] | None,
        now: datetime | None = None,
    ) -> None:
        """Append ``event`` unless its version exists (optimistic locking).

        With an idempotency record, the event and the record are written in one
        transaction, so a command is remembered exactly when its event exists. The
        record replaces one expired at ``now`` (required with a record), so a key whose
        record outlived its TTL runs anew, as :meth:`get_idempotency_record` decided.

        Raises
        ------
        VersionConflictError
            Another command appended this version first.
        ReplayFoundError
            The idempotency record already exists (a committed twin of this command).
        """
        put_event = {
            "TableName": self._table_name,
            "Item": event.to_item(),
            "ConditionExpression": "attribute_not_exists(version)",
        }
        if idempotency_record is None:
            try:
                self._client.put_item(**put_event)
            except ClientError as exc:
                if is_condition_failure(exc):
                    raise VersionConflictError(event.event_id) from None
                raise
            return
        if now is None:
            raise ValueError("an idempotency record needs now")
        put_record = {
            "TableName": self._table_name,
            "Item": idempotency_record,
            "ConditionExpression": ttl.absent_condition("account_id"),
            "ExpressionAttributeValues": to_attribute_values(ttl.condition_values(now)),
        }
        try:
            self._client.transact_write_items(
                TransactItems=[{"Put": put_event}, {"Put": put_record}]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if len(reasons) == 2 and reasons[1] == "ConditionalCheckFailed":
                raise ReplayFoundError(event.event_id) from None
            # The event's version was taken, or a concurrent transaction touched an item.
            if reasons[:1] == ["ConditionalCheckFailed"] or "TransactionConflict" in reasons:
                raise VersionConflictError(event.event_id) from None
            raise

    def create(self, event: AccountEvent) -> bool:
        """Write the creation event; False if the account already exists."""
        try:
            self.append(event, idempotency_record=None)
        except VersionConflictError:
            return False
        return True

    def put_snapshot(self, state: AccountState) -> bool:
        """Store ``state`` as the snapshot unless a newer one is already there.

        Returns
        -------
        bool
            False when the condition kept a newer snapshot (a late writer lost).
        """
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item={
                    "account_id": {"S": state.account_id},
                    "version": {"N": str(SNAPSHOT_VERSION_KEY)},
                    "kind": {"S": "snapshot"},
                    "snapshot_version": {"N": str(state.version)},
                    "balance": {"N": str(state.balance)},
                    "created_at": {"S": state.created_at},
                    "updated_at": {"S": state.updated_at},
                },
                ConditionExpression=(
                    "attribute_not_exists(snapshot_version) OR snapshot_version < :version"
                ),
                ExpressionAttributeValues={":version": {"N": str(state.version)}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True


def _stored_response(text: str) -> StoredResponse:
    """Read a record's ``response``: the first answer (status, exact body, headers)."""
    data = json.loads(text)
    if "status_code" not in data:
        # A record written before answers were stored whole held the body alone (keys
        # sorted); it lives at most the idempotency TTL and is answered as it was.
        return stored_json(200, data)
    return StoredResponse.from_json(text)


def idempotency_item(
    record_id: str, *, fingerprint: str, response: StoredResponse, now: datetime, ttl: int
) -> dict[str, Any]:
    """The idempotency record of a keyed command; TTL removes it after ``ttl`` seconds.

    ``response`` is the answer exactly as this command sends it, so a replay (also to a
    concurrent twin that lost the race) is the same bytes.
    """
    return {
        "account_id": {"S": record_id},
        "version": {"N": str(SNAPSHOT_VERSION_KEY)},
        "kind": {"S": "idempotency"},
        "fingerprint": {"S": fingerprint},
        "response": {"S": response.to_json()},
        "expires_at": {"N": str(math.floor(now.timestamp()) + ttl)},
    }


# --------------------------------------------------------------------------- commands


def open_account(
    store: EventStore, *, now: datetime, caller: str, idempotency_key: str | None = None
) -> CommandResult:
    """Append ``AccountCreated`` (version 1, balance 0) for a new account.

    With an Idempotency-Key the account id is derived from (caller, key), so a retry
    finds the account the first attempt created and appends nothing.
    """
    account_id = account_id_for(caller, idempotency_key)
    event = AccountEvent(
        account_id=account_id,
        version=1,
        type=EventType.CREATED,
        amount=0,
        balance=0,
        occurred_at=iso_timestamp(now),
    )
    if store.create(event):
        return CommandResult(body=AccountState.opened(event).to_dict(), replayed=False)
    if idempotency_key is None:
        raise CorruptHistoryError(f"random account id {account_id} already exists")
    # The first attempt's outcome: the account as it was opened.
    events, _ = store.history(account_id, after_version=0, limit=1)
    if not events:
        raise CorruptHistoryError(f"account {account_id} exists but has no creation event")
    return CommandResult(body=AccountState.opened(events[0]).to_dict(), replayed=True)


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


def command_response(state: AccountState, event: AccountEvent) -> dict[str, Any]:
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
) -> CommandResult:
    """Credit or withdraw ``amount`` with optimistic locking.

    Each attempt loads the state, checks the rule against it and appends the next
    version conditionally; a lost race reloads and re-checks, so a withdrawal that
    became an overdraft meanwhile is refused, not applied.

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
        event = _decide(state, command, amount, now)
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
            _refresh_snapshot(store, new_state)
        return CommandResult(body=body, replayed=False, response=response)
    raise ConcurrentUpdateError(
        f"account {account_id} changed during each of {settings.max_append_attempts} attempts"
    )


def _refresh_snapshot(store: EventStore, state: AccountState) -> None:
    """Best effort: a lost snapshot only makes later reads fold more events."""
    try:
        if not store.put_snapshot(state):
            logger.info("a newer snapshot exists", version=state.version)
    except ClientError:
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
    after = decode_cursor(cursor)
    events, more = store.history(account_id, after_version=after, limit=limit)
    if not events and not store.exists(account_id):
        raise AccountNotFoundError(f"account {account_id} not found")
    next_cursor = encode_cursor(events[-1].version) if more else None
    return HistoryPage(account_id=account_id, events=events, next_cursor=next_cursor)


# --------------------------------------------------------------------------- publishing


def domain_event_entry(event: AccountEvent, *, bus_name: str, source: str) -> dict[str, Any]:
    """The EventBridge entry of ``event``: a pure function of the stored event.

    Redelivering a stream record therefore publishes an identical entry (same
    ``event_id`` = account:version, same time and detail), which a consumer keyed on
    account + version counts once.
    """
    return {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": event.type.value,
        "Time": parse_iso_timestamp(event.occurred_at),
        "Resources": [],
        "Detail": json.dumps(event.to_dict(), separators=(",", ":"), sort_keys=True),
    }


class DomainEventPublisher:
    """Publishes account events to the stack's EventBridge bus.

    Parameters
    ----------
    client : EventBridgeClient
        A boto3 EventBridge client.
    bus_name, source : str
        Target bus and the ``source`` of every entry.
    """

    def __init__(self, client: EventBridgeClient, bus_name: str, source: str) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source

    def publish(self, event: AccountEvent) -> None:
        """Put one domain event.

        Raises
        ------
        PublishFailedError
            If EventBridge reports the entry as failed.
        """
        entry = domain_event_entry(event, bus_name=self._bus_name, source=self._source)
        response = self._client.put_events(Entries=[entry])
        if response.get("FailedEntryCount", 0):
            failed = response["Entries"][0]
            raise PublishFailedError(
                f"{event.event_id}: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
            )
