"""handler_kit.dynamodb: the conditional writes and consistent reads every store shares."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import pytest
from botocore.exceptions import ClientError
from handler_kit import dynamodb, status_transitions
from handler_kit.keyed_table import KeyedTable

from tests.support.aws_faults import first_reply_lost
from tests.support.fakes import START
from tests.unit.shared.conftest import ITEM_TABLE

TABLE = ITEM_TABLE
#: The token a conditional put adds to the item it creates (unique per call).
TOKEN = {dynamodb.WRITE_TOKEN: ANY}


def _key(item_id: str) -> dict[str, Any]:
    return {"item_id": {"S": item_id}}


def test_expression_names_maps_only_the_placeholders_used() -> None:
    # GIVEN candidate names WHEN some appear as #placeholders THEN only those are mapped
    names = dynamodb.expression_names(
        ("status", "result", "size"), "SET #status = :s", "#result = :r AND n = :n"
    )
    assert names == {"#status": "status", "#result": "result"}
    assert dynamodb.expression_names(("status",), "SET n = :n") == {}


def test_update_request_leaves_out_the_maps_an_expression_does_not_use() -> None:
    # GIVEN an update that uses no value and no #name (DynamoDB refuses an empty
    # ExpressionAttributeValues or ExpressionAttributeNames)
    # WHEN its request is built THEN neither map is in it
    request = dynamodb.update_request(
        "t", {"k": {"S": "a"}}, "REMOVE lease", "attribute_exists(k)", {}, names=("status",)
    )
    assert request == {
        "TableName": "t",
        "Key": {"k": {"S": "a"}},
        "UpdateExpression": "REMOVE lease",
        "ConditionExpression": "attribute_exists(k)",
    }


def test_a_failed_condition_is_none_and_any_other_error_is_raised() -> None:
    # GIVEN writes that succeed, fail their condition, or are throttled
    def write(outcome: str, **request: Any) -> dict[str, Any]:
        if outcome == "ok":
            return {"request": request}
        raise ClientError({"Error": {"Code": outcome}}, "PutItem")

    # WHEN each is made unless its condition fails
    # THEN the answer, None for the failed condition, and the throttling raised
    answer = dynamodb.unless_condition_fails(write, outcome="ok", TableName="t")
    assert answer == {"request": {"TableName": "t"}}
    assert dynamodb.unless_condition_fails(write, outcome=dynamodb.CONDITION_FAILED) is None
    with pytest.raises(ClientError):
        dynamodb.unless_condition_fails(write, outcome="ThrottlingException")


def test_put_if_absent_creates_once_then_refuses(client: Any) -> None:
    # GIVEN an empty table WHEN the same key is put twice THEN True, then False
    item = {"item_id": "a", "count": 1}
    assert dynamodb.put_if_absent(client, TABLE, item, key_name="item_id") is True
    again = {"item_id": "a", "count": 2}
    assert dynamodb.put_if_absent(client, TABLE, again, key_name="item_id") is False
    # AND the first item is kept, read back with plain numbers, with its put's token
    assert dynamodb.get_consistent(client, TABLE, _key("a")) == {**item, **TOKEN}


def test_a_put_whose_reply_was_lost_is_its_own_not_another_s(client: Any) -> None:
    # GIVEN DynamoDB applying a put but losing the reply, so the SDK sends it again
    item = {"item_id": "a", "count": 1}
    with first_reply_lost(client, "PutItem", lambda params: True) as lost:
        # WHEN the retry fails its condition on the item the put wrote
        created = dynamodb.put_if_absent(client, TABLE, item, key_name="item_id")
    # THEN the put is known as the one that created it (its token came back)
    assert lost and created is True
    # AND a put by another call still finds the key taken
    assert dynamodb.put_if_absent(client, TABLE, item, key_name="item_id") is False


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
    assert new == {"item_id": "a", "status": "DONE", "n": 3, **TOKEN}
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
    assert dynamodb.get_consistent(client, TABLE, _key("a")) == {"item_id": "a", "n": 2, **TOKEN}


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


class ItemStore(KeyedTable):
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
    done = {"item_id": "a", "status": "DONE", **TOKEN}
    assert store._update_if("a", return_new=True, **update) == done
    assert store._update_if("a", **update) is None
    # THEN the consistent read sees the one change; a missing key reads None
    assert store.get("a", now=START) == done
    assert store.get("missing", now=START) is None


def test_keyed_table_changed_answers_whether_the_transition_happened(client: Any) -> None:
    # GIVEN a RUNNING item
    store = ItemStore(client, TABLE)
    store.put_new({"item_id": "a", "status": "RUNNING"}, now=START)
    update = {
        "update": "SET #status = :done",
        "condition": "#status = :running",
        "values": {":done": "DONE", ":running": "RUNNING"},
    }
    # WHEN the same transition runs twice THEN it happens once
    assert store._changed("a", **update) is True
    assert store._changed("a", **update) is False


class JobLikeStore(ItemStore):
    attribute_names = ("status", "error")


def test_error_status_update_moves_only_from_its_sources(client: Any) -> None:
    # GIVEN a RUNNING item with a lease and a PENDING one
    store = JobLikeStore(client, TABLE)
    leased = {"item_id": "a", "status": "RUNNING", "lease_owner": "me", "lease_expires_epoch": 1}
    store.put_new(leased, now=START)
    store.put_new({"item_id": "b", "status": "PENDING"}, now=START)
    error = {"code": "timed_out", "message": "too late"}
    # WHEN each is moved to TIMED_OUT from RUNNING or REDUCING, releasing the lease
    transition = status_transitions.error_status_update(
        "TIMED_OUT", error, sources=["RUNNING", "REDUCING"], now=START, release_lease=True
    )
    # THEN the RUNNING one moves (error set, lease gone) and the PENDING one does not
    assert store._changed("a", **transition) is True
    assert store._changed("b", **transition) is False
    item = store.get("a", now=START)
    assert item is not None
    assert (item["status"], item["error"]) == ("TIMED_OUT", error)
    assert "lease_owner" not in item and "lease_expires_epoch" not in item
    assert store.get("b", now=START) == {"item_id": "b", "status": "PENDING", **TOKEN}


def test_error_status_update_from_one_source_with_more_to_set_and_check() -> None:
    # GIVEN one source, an extra SET action and an extra condition
    transition = status_transitions.error_status_update(
        "FAILED",
        {"code": "c", "message": "m"},
        sources=["PENDING"],
        now=START,
        also_set="failed_at = :now_iso",
        also_condition="deadline_epoch > :now",
        values={":now": 5},
    )
    # THEN the condition compares with the one source and adds the extra check
    assert transition["condition"] == "#status = :from_0 AND deadline_epoch > :now"
    assert transition["update"] == (
        "SET #status = :status, #error = :error, failed_at = :now_iso, updated_at = :now_iso"
    )
    assert transition["values"][":from_0"] == "PENDING"
    assert transition["values"][":now"] == 5
