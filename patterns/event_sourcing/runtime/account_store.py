"""The event table: reads and conditional writes of events, snapshots and idempotency
records (see ``account_models`` for the table layout)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from account_models import (
    SNAPSHOT_VERSION_KEY,
    AccountEvent,
    AccountState,
    _exact_int,
    fold,
)
from botocore.exceptions import ClientError
from handler_kit import ttl
from handler_kit.dynamodb import (
    error_code,
    put_unless_present,
    to_attribute_values,
    unless_condition_fails,
)
from handler_kit.responses import StoredResponse, stored_json

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb] is installed, Any otherwise
    from mypy_boto3_dynamodb.client import DynamoDBClient


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
        attribute ``expires_at`` (idempotency records only). The name CloudFormation
        generated for the stage's table, which the function reads from
        ``EVENT_TABLE_NAME`` (set by the construct); never a literal.
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
            # Not a conflict when this very put had landed and its reply was lost: read
            # as one, the command was decided again and appended a second time.
            try:
                appended = put_unless_present(
                    self._client, key_names=("account_id", "version"), **put_event
                )
            except ClientError as exc:
                if error_code(exc) != "TransactionConflictException":
                    raise
                # A keyed command's transaction is writing this version: reload and decide
                # again, as when it has committed (if it is cancelled, the reload finds
                # the version free). Not our own put whose reply was lost, met on the
                # SDK's retry: put_unless_present reads the key back for that.
                raise VersionConflictError(event.event_id) from None
            if not appended:
                raise VersionConflictError(event.event_id)
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

    def create(self, event: AccountEvent, *, response: StoredResponse | None = None) -> bool:
        """Write the creation event; False if the account already exists.

        ``response``, the first answer of a keyed open, is kept on the creation event
        item (``response``), so that every retry with the key is answered its bytes:
        its links and ``Location`` name the path the first request came by.
        """
        item = event.to_item()
        if response is not None:
            item["response"] = {"S": response.to_json()}
        # True also when this very put had landed and its reply was lost (read as an
        # existing account, an unkeyed open answered 500).
        return put_unless_present(
            self._client,
            TableName=self._table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(version)",
        )

    def creation(self, account_id: str) -> tuple[AccountEvent, StoredResponse | None] | None:
        """The account's creation event and the first answer kept with it (None for an
        open without a key, or one stored before answers were kept); None: no account."""
        item = self._client.get_item(
            TableName=self._table_name,
            Key={"account_id": {"S": account_id}, "version": {"N": "1"}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        response = item.get("response")
        stored = StoredResponse.from_json(response["S"]) if response is not None else None
        return AccountEvent.from_item(item), stored

    def put_snapshot(self, state: AccountState) -> bool:
        """Store ``state`` as the snapshot unless a newer one is already there.

        Returns
        -------
        bool
            False when the condition kept a newer snapshot (a late writer lost).
        """
        stored = unless_condition_fails(
            self._client.put_item,
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
        return stored is not None


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
