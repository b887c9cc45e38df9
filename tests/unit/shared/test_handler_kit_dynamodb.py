"""handler_kit.dynamodb: the conditional writes and consistent reads every store shares."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from handler_kit import dynamodb

from tests.support.fakes import START
from tests.unit.shared.conftest import ITEM_TABLE

TABLE = ITEM_TABLE


def _key(item_id: str) -> dict[str, Any]:
    return {"item_id": {"S": item_id}}


def test_expression_names_maps_only_the_placeholders_used() -> None:
    # GIVEN candidate names WHEN some appear as #placeholders THEN only those are mapped
    names = dynamodb.expression_names(
        ("status", "result", "size"), "SET #status = :s", "#result = :r AND n = :n"
    )
    assert names == {"#status": "status", "#result": "result"}
    assert dynamodb.expression_names(("status",), "SET n = :n") == {}


def test_put_if_absent_creates_once_then_refuses(client: Any) -> None:
    # GIVEN an empty table WHEN the same key is put twice THEN True, then False
    item = {"item_id": "a", "count": 1}
    assert dynamodb.put_if_absent(client, TABLE, item, key_name="item_id") is True
    again = {"item_id": "a", "count": 2}
    assert dynamodb.put_if_absent(client, TABLE, again, key_name="item_id") is False
    # AND the first item is kept, read back with plain numbers
    assert dynamodb.get_consistent(client, TABLE, _key("a")) == item


def test_get_consistent_is_none_for_a_missing_item(client: Any) -> None:
    # GIVEN no item WHEN read THEN None
    assert dynamodb.get_consistent(client, TABLE, _key("missing")) is None


def test_update_if_returns_the_new_item_or_none_when_the_condition_fails(client: Any) -> None:
    # GIVEN a RUNNING item
    dynamodb.put_if_absent(client, TABLE, {"item_id": "a", "status": "RUNNING"}, key_name="item_id")
    update = {
        "update": "SET #status = :done, n = :n",
        "condition": "#status = :running",
        "values": {":done": "DONE", ":running": "RUNNING", ":n": 3},
        "names": ("status", "result"),
    }
    # WHEN updated under its condition THEN the new item (ALL_NEW) as plain values
    new = dynamodb.update_if(client, TABLE, _key("a"), return_new=True, **update)
    assert new == {"item_id": "a", "status": "DONE", "n": 3}
    # WHEN the condition no longer holds THEN None, and nothing is written
    assert dynamodb.update_if(client, TABLE, _key("a"), **update) is None
    assert dynamodb.get_consistent(client, TABLE, _key("a")) == new


def test_update_if_without_return_new_answers_an_empty_item(client: Any) -> None:
    # GIVEN an item WHEN updated without names or ALL_NEW THEN {} (not None): it was written
    dynamodb.put_if_absent(client, TABLE, {"item_id": "a", "n": 1}, key_name="item_id")
    result = dynamodb.update_if(
        client,
        TABLE,
        _key("a"),
        update="SET n = :two",
        condition="n = :one",
        values={":one": 1, ":two": 2},
    )
    assert result == {}
    assert dynamodb.get_consistent(client, TABLE, _key("a")) == {"item_id": "a", "n": 2}


def test_other_client_errors_are_raised(client: Any) -> None:
    # GIVEN a table that does not exist WHEN written THEN the client error is not swallowed
    with pytest.raises(ClientError):
        dynamodb.put_if_absent(client, "no-such-table", {"item_id": "a"}, key_name="item_id")
    with pytest.raises(ClientError):
        dynamodb.update_if(
            client,
            "no-such-table",
            _key("a"),
            update="SET n = :n",
            condition="n = :n",
            values={":n": 1},
        )


class ItemStore(dynamodb.KeyedTable):
    key_name = "item_id"
    attribute_names = ("status",)


def test_keyed_table_puts_reads_and_updates_by_its_key(client: Any) -> None:
    # GIVEN a store of the table, keyed by item_id
    store = ItemStore(client, TABLE)
    # WHEN an item is put twice THEN the second put is refused
    assert store.put_new({"item_id": "a", "status": "RUNNING"}, now=START) is True
    assert store.put_new({"item_id": "a", "status": "DONE"}, now=START) is False
    # WHEN updated under a condition that holds, then one that does not
    update = {
        "update": "SET #status = :done",
        "condition": "#status = :running",
        "values": {":done": "DONE", ":running": "RUNNING"},
    }
    assert store._update_if("a", return_new=True, **update) == {"item_id": "a", "status": "DONE"}
    assert store._update_if("a", **update) is None
    # THEN the consistent read sees the one change; a missing key reads None
    assert store.get("a", now=START) == {"item_id": "a", "status": "DONE"}
    assert store.get("missing", now=START) is None
