"""account_api.handler against moto: a snapshot write that fails or stalls after the
command's event is committed never turns the command into an error or a timeout.

The snapshot is best effort: a 503 (or a function timeout, which API Gateway answers
5xx) for a committed command makes an unkeyed client apply it twice on its retry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from handler_kit.clients import SHORT_ATTEMPT_S

from tests.support.aws_faults import attempts_stall
from tests.unit.event_sourcing.conftest import SNAPSHOT_INTERVAL, command_event

#: The API function's timeout (``blocks.function``'s API functions: 10 s).
API_TIMEOUT_S = 10


def _is_snapshot(params: dict[str, Any]) -> bool:
    return params.get("Item", {}).get("kind") == {"S": "snapshot"}


@contextmanager
def snapshot_puts_time_out(bank: Any) -> Iterator[list[dict[str, Any]]]:
    """Within the block, every snapshot PutItem of the API (on any of its DynamoDB
    clients) raises ``ReadTimeoutError`` as the SDK does once its retries are spent;
    other writes go through. Yields the parameters of the puts that failed."""
    failed: list[dict[str, Any]] = []

    def time_out(params: dict[str, Any], **_: Any) -> None:
        # ``params`` is the serialized request here: its body is the JSON of the call.
        sent = json.loads(params["body"])
        if _is_snapshot(sent):
            failed.append(sent)
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    clients = bank.dynamodb_clients()
    for client in clients:
        client.meta.events.register("before-call.dynamodb.PutItem", time_out)
    try:
        yield failed
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb.PutItem", time_out)


def _to_snapshot_point(bank: Any) -> str:
    """An account one command short of a snapshot point (version K - 1)."""
    account_id = bank.open_id()
    for _ in range(SNAPSHOT_INTERVAL - 2):
        assert bank.credit(account_id, 1).status == 200
    return account_id


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_a_snapshot_write_that_times_out_does_not_fail_the_committed_command(bank, infra, keyed):
    # GIVEN an account one command short of a snapshot point, and snapshot puts that end
    # in a transport error (a BotoCoreError, not a ClientError)
    account_id = _to_snapshot_point(bank)
    headers = {"Idempotency-Key": "pay-day"} if keyed else None

    # WHEN the command that reaches the snapshot point runs
    with snapshot_puts_time_out(bank) as failed:
        response = bank.credit(account_id, 100, headers=headers)

    # THEN it answers 200 (it was committed), its event is stored once, no snapshot
    assert len(failed) == 1
    assert response.status == 200, response.body
    assert response.body["version"] == SNAPSHOT_INTERVAL
    assert infra.versions(account_id) == list(range(1, SNAPSHOT_INTERVAL + 1))
    assert infra.snapshot(account_id) is None

    # WHEN the client retries it (it has its answer, but a keyed retry must be safe)
    if keyed:
        replay = bank.credit(account_id, 100, headers=headers)

        # THEN the keyed retry replays the same bytes and appends nothing
        assert replay.status == 200
        assert replay.raw_body == response.raw_body
        assert replay.headers["idempotent-replayed"] == "true"
        assert infra.versions(account_id) == list(range(1, SNAPSHOT_INTERVAL + 1))
    # AND reads are right without the snapshot
    assert bank.get(account_id).body["balance"] == SNAPSHOT_INTERVAL - 2 + 100


def test_a_stalled_snapshot_write_ends_well_inside_the_api_timeout(bank, infra):
    # GIVEN an account one command short of a snapshot point, and a snapshot write whose
    # every attempt stalls until its client's timeouts (botocore's backoff on the clock)
    account_id = _to_snapshot_point(bank)
    started = bank.clock()

    # WHEN the command that reaches the snapshot point runs
    with ExitStack() as stack:
        for client in bank.dynamodb_clients():
            stack.enter_context(
                attempts_stall(client, "PutItem", bank.clock.advance, _is_snapshot, count=math.inf)
            )
        response = bank.credit(account_id, 1)

    # THEN it answers 200 having spent one short attempt on the snapshot (1 s to connect,
    # 2 s to read, no retry), well inside the function's timeout: the committed command
    # is not cut off (API Gateway would answer 5xx)
    assert response.status == 200, response.body
    elapsed_s = (bank.clock() - started).total_seconds()
    assert elapsed_s <= SHORT_ATTEMPT_S
    assert bank.models.SNAPSHOT_BUDGET_MS < API_TIMEOUT_S * 1000
    assert infra.versions(account_id) == list(range(1, SNAPSHOT_INTERVAL + 1))
    assert infra.snapshot(account_id) is None


@pytest.mark.parametrize(("short_by_ms", "written"), [(1, False), (0, True)])
def test_the_snapshot_is_skipped_when_the_invocation_has_too_little_time_left(
    bank, infra, short_by_ms, written
):
    # GIVEN an account one command short of a snapshot point
    account_id = _to_snapshot_point(bank)
    bank.calls.clear()

    # WHEN the command that reaches it runs with less time left than a snapshot write's
    # worst case (or exactly that much)
    remaining_ms = bank.models.SNAPSHOT_BUDGET_MS - short_by_ms
    event = command_event(account_id, "credit", {"amount": 1})
    response = bank.call_api(event, remaining_ms=remaining_ms)

    # THEN the command is committed and answered; the snapshot is written only when its
    # worst case fits (a skipped one is not even sent)
    assert response.status == 200, response.body
    assert infra.versions(account_id) == list(range(1, SNAPSHOT_INTERVAL + 1))
    assert (infra.snapshot(account_id) is not None) is written
    assert bank.calls.operations.count("PutItem") == (2 if written else 1)
