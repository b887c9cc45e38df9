"""Event-sourced bank accounts: the model (constants, errors, settings, events, state).

Commands append events, state is folded from them. Everything in ``account_models``,
``account_parsing``, ``account_store``, ``account_service`` and ``account_bus`` is plain
Python (no Lambda types) so it can be tested directly: the handlers in
``account_api.py`` and ``account_publisher.py`` only parse events, call these functions
and shape responses.

Table layout (partition key ``account_id`` S, sort key ``version`` N)::

    account_id=<uuid>  version=1..n   kind=event     immutable events, contiguous versions
                                                     (version 1 of a keyed open also
                                                     keeps its first answer, ``response``)
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

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from handler_kit.clients import SHORT_ATTEMPT_S
from handler_kit.clock import parse_timestamp
from handler_kit.config import EnvSettings, env_int

# typing_extensions' TypedDict, not typing's: pydantic (blocks/openapi_docs.py, offline)
# turns only that one into JSON schema on Python < 3.12.
from typing_extensions import TypedDict

if TYPE_CHECKING:  # only annotations: the API shapes responses (event handler import)
    from handler_kit.responses import StoredResponse

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
#: The time a snapshot write needs left in the invocation, in ms: its one short attempt
#: (``handler_kit.clients.one_attempt_client_config``; the snapshot is written after the
#: event is committed and is best effort, so giving up costs only a longer read later)
#: and a second to send the answer. With less, it is skipped rather than risk the
#: function's timeout after the command was committed.
SNAPSHOT_BUDGET_MS = SHORT_ATTEMPT_S * 1000 + 1000


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
class AccountSettings(EnvSettings):
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

    snapshot_interval: int = env_int(10, "SNAPSHOT_INTERVAL")
    max_append_attempts: int = env_int(8, "MAX_APPEND_ATTEMPTS")
    idempotency_ttl_seconds: int = env_int(86_400, "IDEMPOTENCY_TTL_SECONDS")
    history_page_size: int = 25
    max_history_page_size: int = 100


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


class EventBody(TypedDict):
    """One event as the API shows it (and as its domain event's ``detail``)."""

    event_id: str
    account_id: str
    version: int
    type: EventType
    amount: int
    balance: int
    occurred_at: str


class AccountBody(TypedDict):
    """The body of ``GET /accounts/{id}``: the account as of ``version``."""

    account_id: str
    balance: int
    version: int
    created_at: str
    updated_at: str


class AccountLinks(TypedDict):
    """Where an account and its events are read."""

    self: str
    events: str


class OpenedAccountBody(AccountBody):
    """The body of ``POST /accounts``'s 201: the new account and its links."""

    links: AccountLinks


class CommandBody(AccountBody):
    """The body of a credit's or a withdrawal's 200: the account after it, and its event."""

    event: EventBody


class HistoryBody(TypedDict):
    """The body of ``GET /accounts/{id}/events``: a page of events, oldest first;
    ``next_cursor`` is null on the last page."""

    account_id: str
    events: list[EventBody]
    next_cursor: str | None


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

    def to_dict(self) -> EventBody:
        """JSON-ready form (history pages, command responses, domain event detail); a
        StrEnum serializes as its value."""
        return {
            "event_id": self.event_id,
            "account_id": self.account_id,
            "version": self.version,
            "type": self.type,
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

    def to_dict(self) -> AccountBody:
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
    body : Mapping
        The body as data (for logs and metrics): an ``AccountBody`` for ``open_account``,
        a ``CommandBody`` for a command.
    replayed : bool
        True when a retry with the same key was answered from the idempotency record.
    response : StoredResponse or None
        The answer exactly as first sent: a replay sends these bytes, never a
        re-serialization of ``body``. For ``open_account`` it is the 201 (the first
        one for a keyed retry, kept with the creation event: its links and ``Location``
        name the path the first request came by, which a retry's may not).
    """

    body: Mapping[str, Any]
    replayed: bool
    response: StoredResponse | None = None


@dataclass(frozen=True)
class HistoryPage:
    """One page of ``GET /accounts/{id}/events``."""

    account_id: str
    events: list[AccountEvent]
    next_cursor: str | None

    def to_dict(self) -> HistoryBody:
        """JSON-ready body of ``GET /accounts/{id}/events``."""
        return {
            "account_id": self.account_id,
            "events": [event.to_dict() for event in self.events],
            "next_cursor": self.next_cursor,
        }
