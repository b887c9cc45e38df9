"""account_api.handler against moto: snapshots every k events, and paged history."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from tests.support.aws_faults import throttled, unreachable
from tests.support.events import assert_json_error
from tests.unit.event_sourcing.conftest import SNAPSHOT_INTERVAL, account_event

# --------------------------------------------------------------------------- snapshots


def _make_events(bank: Any, account_id: str, count: int) -> None:
    for _ in range(count):
        assert bank.credit(account_id, 1).status == 200


def test_snapshot_is_written_every_k_events(bank, infra):
    # GIVEN an account (version 1) WHEN it reaches version 2K + 2
    account_id = bank.open_id()
    _make_events(bank, account_id, 2 * SNAPSHOT_INTERVAL + 1)

    # THEN the snapshot covers version 2K, with the balance as of that version
    snapshot = infra.snapshot(account_id)
    assert snapshot is not None
    assert snapshot["snapshot_version"] == {"N": str(2 * SNAPSHOT_INTERVAL)}
    assert snapshot["balance"] == {"N": str(2 * SNAPSHOT_INTERVAL - 1)}
    assert snapshot["kind"] == {"S": "snapshot"}


@pytest.mark.parametrize(("snapshots", "extra"), [(2, 0), (9, 3), (20, 4)])
def test_reads_cost_two_requests_of_at_most_k_items(bank, infra, snapshots, extra):
    # GIVEN an account with a short or a long history
    history_length = SNAPSHOT_INTERVAL * snapshots + extra
    account_id = bank.open_id()
    _make_events(bank, account_id, history_length - 1)
    bank.calls.clear()

    # WHEN its balance is read
    response = bank.get(account_id)

    # THEN the right state comes from one GetItem (snapshot) and one Query
    assert response.body["version"] == history_length
    assert response.body["balance"] == history_length - 1
    assert bank.calls.operations == ["GetItem", "Query"]
    # AND at most K items were read (the snapshot plus fewer than K events)
    assert bank.calls.items_read <= SNAPSHOT_INTERVAL


def test_commands_cost_a_constant_number_of_requests(bank, infra):
    # GIVEN a long history
    account_id = bank.open_id()
    _make_events(bank, account_id, SNAPSHOT_INTERVAL * 6)
    costs = []
    # WHEN commands run at versions that are not snapshot points
    for _ in range(SNAPSHOT_INTERVAL - 1):
        bank.calls.clear()
        bank.credit(account_id, 1)
        costs.append(bank.calls.operations)
    # THEN each is a GetItem, a Query and a PutItem (plus one snapshot PutItem every K)
    plain = ["GetItem", "Query", "PutItem"]
    assert all(cost in (plain, [*plain, "PutItem"]) for cost in costs)
    assert costs.count([*plain, "PutItem"]) <= 1


def test_missing_snapshot_still_gives_the_right_state(bank, infra):
    # GIVEN a history of 3K + 2 events whose snapshot is lost
    account_id = bank.open_id()
    _make_events(bank, account_id, 3 * SNAPSHOT_INTERVAL + 1)
    expected = bank.get(account_id).body
    infra.delete_snapshot(account_id)
    bank.calls.clear()

    # WHEN it is read THEN the state is the same: the fold starts from version 1
    assert bank.get(account_id).body == expected
    # AND only the number of pages grew
    assert bank.calls.operations[0] == "GetItem"
    assert bank.calls.operations.count("Query") > 1


def test_read_before_the_snapshot_write_still_takes_two_requests(bank, infra):
    # GIVEN 3K events whose newest snapshot (version 3K) is not written yet: the snapshot
    # still covers version 2K, so K events follow it
    k = SNAPSHOT_INTERVAL
    account_id = bank.open_id()
    _make_events(bank, account_id, 3 * k - 1)
    expected = bank.get(account_id).body
    infra.delete_snapshot(account_id)
    older = bank.models.AccountState(account_id, 2 * k, 2 * k - 1, expected["created_at"], "x")
    assert bank.competitor().put_snapshot(older)
    bank.calls.clear()

    # WHEN the balance is read THEN it is right, in two requests reading K + 1 items
    assert bank.get(account_id).body == expected
    assert bank.calls.operations == ["GetItem", "Query"]
    assert bank.calls.items_read == k + 1


def test_late_snapshot_never_overwrites_a_newer_one(bank, infra):
    # GIVEN an account whose snapshot covers version 2K
    account_id = bank.open_id()
    _make_events(bank, account_id, 2 * SNAPSHOT_INTERVAL)
    expected = bank.get(account_id).body

    # WHEN a slow writer tries to store an older snapshot (version K)
    stale = bank.models.AccountState(account_id, SNAPSHOT_INTERVAL, 999, "a", "b")
    stored = bank.competitor().put_snapshot(stale)

    # THEN the condition keeps the newer one and the read is unchanged
    assert stored is False
    assert infra.snapshot(account_id)["snapshot_version"] == {"N": str(2 * SNAPSHOT_INTERVAL)}
    assert bank.get(account_id).body == expected


def test_older_snapshot_makes_reads_longer_not_wrong(bank, infra):
    # GIVEN a snapshot that lags: it covers version K although the history is at 3K + 1
    account_id = bank.open_id()
    _make_events(bank, account_id, 3 * SNAPSHOT_INTERVAL)
    expected = bank.get(account_id).body
    infra.delete_snapshot(account_id)
    lagging = bank.models.AccountState(
        account_id, SNAPSHOT_INTERVAL, SNAPSHOT_INTERVAL - 1, expected["created_at"], "x"
    )
    assert bank.competitor().put_snapshot(lagging)

    # WHEN it is read THEN the state is right
    assert bank.get(account_id).body == expected


#: What a snapshot write can end in after the SDK's retries: AWS refused or throttled it
#: (ClientError), or the transport failed (BotoCoreError).
SNAPSHOT_FAILURES = {
    "throttled": throttled("PutItem"),
    "read-timeout": ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    "unreachable": unreachable(),
    "connection-closed": ConnectionClosedError(
        endpoint_url="https://dynamodb.us-east-1.amazonaws.com"
    ),
}


@pytest.mark.parametrize("failure", SNAPSHOT_FAILURES.values(), ids=SNAPSHOT_FAILURES)
def test_failed_snapshot_write_does_not_fail_the_command(bank, infra, monkeypatch, failure):
    # GIVEN snapshot writes that fail (throttled, or a timeout or lost connection)
    account_id = bank.open_id()

    def failing(self: Any, state: Any) -> bool:
        raise failure

    # On the class: whichever store of the API writes the snapshot.
    monkeypatch.setattr(bank.store.EventStore, "put_snapshot", failing)

    # WHEN the command that reaches a snapshot point runs THEN it still succeeds
    _make_events(bank, account_id, SNAPSHOT_INTERVAL)
    assert infra.snapshot(account_id) is None
    assert bank.get(account_id).body["version"] == SNAPSHOT_INTERVAL + 1


# --------------------------------------------------------------------------- history


def test_history_pages_oldest_first_with_a_cursor(bank, infra):
    # GIVEN an account with 7 events
    account_id = bank.open_id()
    _make_events(bank, account_id, 6)

    # WHEN the history is read 3 at a time, following next_cursor
    versions, cursors, query = [], [], {"limit": "3"}
    while True:
        page = bank.history(account_id, **query)
        assert page.status == 200
        versions += [event["version"] for event in page.body["events"]]
        cursors.append(page.body["next_cursor"])
        if page.body["next_cursor"] is None:
            break
        query = {"limit": "3", "cursor": page.body["next_cursor"]}

    # THEN every event comes once, in order, over 3 pages, and no snapshot is listed
    assert versions == [1, 2, 3, 4, 5, 6, 7]
    assert len(cursors) == 3 and cursors[-1] is None
    first = bank.history(account_id, limit="1").body["events"][0]
    assert first["type"] == "AccountCreated" and first["event_id"] == f"{account_id}:1"


def test_state_and_history_are_read_consistently(bank):
    # GIVEN an account with a snapshot and the Query requests its API sends, recorded
    account_id = bank.open_id()
    _make_events(bank, account_id, SNAPSHOT_INTERVAL + 1)
    queries: list[dict[str, Any]] = []
    for client in bank.dynamodb_clients():
        client.meta.events.register(
            "provide-client-params.dynamodb.Query",
            lambda params, **_: queries.append(dict(params)),
        )

    # WHEN its state and its history are read right after the last credit
    state = bank.get(account_id).body
    events = bank.history(account_id).body["events"]

    # THEN both see it: every Query is strongly consistent (an eventually consistent read
    # may miss the newest events, and a client then sees its own credit missing)
    assert state["version"] == events[-1]["version"] == SNAPSHOT_INTERVAL + 2
    assert len(queries) == 2
    assert all(query.get("ConsistentRead") is True for query in queries)


def test_history_of_exactly_one_page_has_no_cursor(bank):
    # GIVEN 3 events WHEN they are read 3 at a time THEN one page and no cursor
    account_id = bank.open_id()
    _make_events(bank, account_id, 2)
    page = bank.history(account_id, limit="3")
    assert [e["version"] for e in page.body["events"]] == [1, 2, 3]
    assert page.body["next_cursor"] is None


def test_history_default_page_size(bank):
    # GIVEN a new account WHEN its history is read without parameters THEN one page
    account_id = bank.open_id()
    body = bank.history(account_id).body
    assert body == {
        "account_id": account_id,
        "events": [body["events"][0]],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "garbage"},
        {"cursor": base64.urlsafe_b64encode(b"v1:0").decode()},
        {"cursor": base64.urlsafe_b64encode(b"v2:5").decode()},
        {"cursor": base64.urlsafe_b64encode(b"v1:01").decode()},
        {"cursor": base64.urlsafe_b64encode(b"v1:5").decode()},  # names no account
        {"page": "2"},
    ],
)
def test_bad_history_parameters_are_400(bank, query):
    # GIVEN an account WHEN its history is asked with a bad limit, cursor or parameter
    # THEN 400
    account_id = bank.open_id()
    assert_json_error(bank.history(account_id, **query), 400, "invalid_request")


def test_a_cursor_is_good_only_for_its_account_and_as_issued(bank):
    # GIVEN account A with a next page, and account B with fewer events than A's cursor
    a, b = bank.open_id(), bank.open_id()
    for _ in range(4):
        bank.credit(a, 1)
    bank.credit(b, 1)
    cursor = bank.history(a, limit="2").body["next_cursor"]
    assert bank.history(a, cursor=cursor).status == 200

    # WHEN A's cursor pages B's history, or comes back with a stray character (base64
    # decoding alone would skip it)
    # THEN 400: not "B's history ends here" (200, no events, next_cursor null)
    assert_json_error(bank.history(b, cursor=cursor), 400, "invalid_request")
    assert_json_error(bank.history(a, cursor=cursor[:2] + "!" + cursor[2:]), 400, "invalid_request")


@pytest.mark.parametrize(
    ("parameters", "status"),
    [
        ({"limit": ["1", "100"]}, 400),
        ({"limit": ["2"], "page": ["1", "2"]}, 400),
        ({"limit": ["2", "2"]}, 200),
    ],
    ids=["limit-twice-differently", "unknown-repeated", "limit-twice-the-same"],
)
def test_a_query_parameter_repeated_with_different_values_is_400(bank, parameters, status):
    # GIVEN an account with 3 events
    account_id = bank.open_id()
    _make_events(bank, account_id, 2)

    # WHEN its history is asked with a repeated parameter (API Gateway's single-value map
    # keeps only the last value)
    event = account_event("GET", account_id, "/events", multi_value_query=parameters)
    response = bank.call_api(event)

    # THEN conflicting values are 400, not the last one silently; the same value is fine
    assert response.status == status, response.body
    if status == 200:
        assert [e["version"] for e in response.body["events"]] == [1, 2]
