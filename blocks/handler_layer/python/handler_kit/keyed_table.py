"""The base of every pattern's store: a table keyed by one string attribute whose items
change by conditional writes (see :mod:`handler_kit.dynamodb` for the writes)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from handler_kit.dynamodb import (
    get_consistent,
    put_if_absent,
    update_if,
    update_or_blocker,
    update_request,
)

if TYPE_CHECKING:  # typed when boto3-stubs[dynamodb] is installed, Any otherwise
    from mypy_boto3_dynamodb.client import DynamoDBClient


class KeyedTable:
    """A table keyed by one string attribute whose items change by conditional writes.

    A pattern's store subclasses it, names its key, the attribute names its
    expressions write as ``#name`` and its TTL attribute, and adds its own transitions
    on top of :meth:`_update_if`, :meth:`put_new` and :meth:`get`. With a TTL
    attribute, reads and creates treat an expired item as absent (:mod:`handler_kit.ttl`).

    Parameters
    ----------
    client : DynamoDBClient
        A low-level boto3 DynamoDB client (cheaper to create than the resource).
    table_name : str
        The table; its partition key is :attr:`key_name` (S).
    """

    #: The partition key attribute (a string).
    key_name: ClassVar[str]
    #: Attribute names the store's expressions may write as ``#name``.
    attribute_names: ClassVar[tuple[str, ...]] = ()
    #: The table's TTL attribute; None when its items never expire.
    ttl_attribute: ClassVar[str | None] = None

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def _key(self, key_value: str) -> dict[str, Any]:
        return {self.key_name: {"S": key_value}}

    def _update_if(
        self,
        key_value: str,
        *,
        update: str,
        condition: str,
        values: Mapping[str, Any],
        return_new: bool = False,
    ) -> dict[str, Any] | None:
        """Run a conditional UpdateItem on one item; None when the condition failed.

        See :func:`update_if`.
        """
        return update_if(
            self._client,
            self._table_name,
            self._key(key_value),
            update=update,
            condition=condition,
            values=values,
            names=self.attribute_names,
            return_new=return_new,
        )

    def _changed(
        self, key_value: str, *, update: str, condition: str, values: Mapping[str, Any]
    ) -> bool:
        """Run a conditional UpdateItem on one item; False when the condition failed.

        For a transition whose caller needs only to know whether it happened.
        """
        changed = self._update_if(key_value, update=update, condition=condition, values=values)
        return changed is not None

    def _update_or_blocker(
        self, key_value: str, *, update: str, condition: str, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """:func:`update_or_blocker` on one item: None when applied, else the item that
        failed the condition (``{}`` when there is none)."""
        request = update_request(
            self._table_name, self._key(key_value), update, condition, values, self.attribute_names
        )
        return update_or_blocker(self._client, request)

    def _changed_or_landed(
        self,
        key_value: str,
        *,
        update: str,
        condition: str,
        values: Mapping[str, Any],
        mark: tuple[str, str],
    ) -> bool:
        """:meth:`_changed`, also True when this very write had landed already.

        The SDK retries a write whose reply was lost (a read timeout, a dropped
        connection, a 500 after the write), and the retry fails its condition on the
        write it repeats. ``update`` must set ``mark`` (attribute, value), the value unique
        to the caller (a lease owner): the item that failed the condition, returned with
        the failure (no read), carrying it is this write.
        """
        blocker = self._update_or_blocker(
            key_value, update=update, condition=condition, values=values
        )
        attribute, value = mark
        return blocker is None or blocker.get(attribute) == value

    def put_new(self, item: Mapping[str, Any], *, now: datetime) -> bool:
        """Create the item unless a live one with the same key exists; False if it does.

        An item expired at ``now`` (:attr:`ttl_attribute`) is replaced, in the same
        conditional put, as if TTL had already deleted it.
        """
        if self.ttl_attribute is None:
            return put_if_absent(self._client, self._table_name, item, key_name=self.key_name)
        return put_if_absent(
            self._client,
            self._table_name,
            item,
            key_name=self.key_name,
            now=now,
            ttl_attribute=self.ttl_attribute,
        )

    def get(self, key_value: str, *, now: datetime) -> dict[str, Any] | None:
        """Strongly consistent read; None if missing or expired at ``now``.

        Numbers come back as int/float, not Decimal.
        """
        if self.ttl_attribute is None:
            return get_consistent(self._client, self._table_name, self._key(key_value))
        return get_consistent(
            self._client,
            self._table_name,
            self._key(key_value),
            now=now,
            ttl_attribute=self.ttl_attribute,
        )
