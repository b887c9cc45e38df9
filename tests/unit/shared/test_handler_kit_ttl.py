"""handler_kit.ttl: an item past its TTL is absent to reads and to creates.

DynamoDB deletes expired items typically within two days; until then reads return them
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
moto never deletes them, which is what these tests rely on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import ANY

import pytest
from handler_kit import dynamodb, ttl
from handler_kit.keyed_table import KeyedTable

from tests.support.fakes import START
from tests.unit.shared.conftest import ITEM_TABLE

TABLE = ITEM_TABLE
NOW = int(START.timestamp())


class ItemStore(KeyedTable):
    key_name = "item_id"
    attribute_names = ("status",)
    ttl_attribute = ttl.TTL_ATTRIBUTE


@pytest.mark.parametrize(
    ("expires_at", "expired"),
    [(NOW - 1, True), (NOW, True), (NOW + 1, False), ({"N": str(NOW)}, True), ("x", False)],
)
def test_expiry_is_inclusive_of_the_second_it_names(expires_at: Any, expired: bool) -> None:
    # GIVEN an item with this expires_at (plain or low-level) WHEN checked later in
    # second NOW (epoch seconds are floored) THEN it is expired from its own second on
    now = START + timedelta(milliseconds=300)
    assert int(now.timestamp()) == NOW
    assert ttl.is_expired({"expires_at": expires_at}, now) is expired
    assert ttl.is_expired({}, now) is False  # no TTL attribute: never expires


def test_keyed_table_reads_an_expired_item_as_absent_and_replaces_it(client: Any) -> None:
    # GIVEN an item that expired a second ago, still in the table (TTL not yet run)
    store = ItemStore(client, TABLE)
    old = {"item_id": "a", "status": "DONE", "expires_at": NOW - 1}
    client.put_item(TableName=TABLE, Item=dynamodb.to_attribute_values(old))

    # WHEN it is read THEN it is absent; a read that does not know the TTL still sees it
    assert store.get("a", now=START) is None
    assert dynamodb.get_consistent(client, TABLE, {"item_id": {"S": "a"}}) == old

    # WHEN a new item with its key is created THEN it replaces the expired one
    new = {"item_id": "a", "status": "PENDING", "expires_at": NOW + 60}
    assert store.put_new(new, now=START) is True
    assert store.get("a", now=START) == {**new, "write_token": ANY}
    # AND a live item still blocks a create
    assert store.put_new({**new, "status": "OTHER"}, now=START) is False


def test_a_create_decided_on_a_stale_clock_does_not_replace_a_live_item(client: Any) -> None:
    # GIVEN an item that expires at NOW
    store = ItemStore(client, TABLE)
    item = {"item_id": "a", "status": "DONE", "expires_at": NOW}
    client.put_item(TableName=TABLE, Item=dynamodb.to_attribute_values(item))

    # WHEN a writer whose clock is a second behind creates with its key THEN DynamoDB's
    # condition (not the writer's earlier read) decides: the item is live, it is kept
    assert (
        store.put_new({"item_id": "a", "status": "NEW"}, now=START - timedelta(seconds=1)) is False
    )
    assert dynamodb.get_consistent(client, TABLE, {"item_id": {"S": "a"}}) == item
    # AND from its expiry second on, the same create replaces it
    assert store.put_new({"item_id": "a", "status": "NEW"}, now=START) is True


def test_unexpired_condition_keeps_a_transition_off_an_expired_item(client: Any) -> None:
    # GIVEN an expired PENDING item and a live one
    for item_id, expires_at in (("old", NOW), ("live", NOW + 1)):
        item = {"item_id": item_id, "status": "PENDING", "expires_at": expires_at}
        client.put_item(TableName=TABLE, Item=dynamodb.to_attribute_values(item))
    store = ItemStore(client, TABLE)
    transition = {
        "update": "SET #status = :running",
        "condition": f"#status = :pending AND {ttl.unexpired_condition()}",
        "values": {":running": "RUNNING", ":pending": "PENDING", **ttl.condition_values(START)},
    }
    # WHEN both are claimed THEN only the live one moves
    assert store._update_if("old", **transition) is None
    assert store._update_if("live", **transition) == {}
