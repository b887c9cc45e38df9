"""Pattern 3, event sourcing: commands append events; the stream publishes them to the bus.

The stack has no consumer on its bus, so the scenarios observe it the way a consumer
would: :meth:`~localstage.target.Target.subscribe_to_bus` adds a rule with a queue
target for the duration of a scenario (and removes it afterwards).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from localstage.scenarios import Scenario, ScenarioFailedError, Transcript
from localstage.target import HttpResponse, Target

from patterns import pattern_name_of

#: The stack of the pattern folder this module is in.
STACK = pattern_name_of(__file__)
#: Stream poll, publisher cold start, bus delivery: seconds locally, more when deployed.
PUBLISH_TIMEOUT = 30.0
DOMAIN_EVENT_TYPES = ("AccountCreated", "AccountCredited", "AccountWithdrawn")


def api(target: Target) -> str:
    return target.output(STACK, "ApiUrl")


def expect(response: HttpResponse, status: int, what: str) -> HttpResponse:
    if response.status != status:
        raise ScenarioFailedError(
            f"{what}: expected {status}, got {response.status} {response.body}"
        )
    return response


def open_account(target: Target) -> str:
    created = expect(target.call_api(api(target), "POST", "accounts", json_body={}), 201, "open")
    return str(created.body["account_id"])


def command(
    target: Target, account_id: str, name: str, amount: Any, **headers: str
) -> HttpResponse:
    return target.call_api(
        api(target),
        "POST",
        f"accounts/{account_id}/{name}",
        json_body={"amount": amount},
        headers=headers or None,
    )


def read(target: Target, account_id: str) -> HttpResponse:
    return target.call_api(api(target), "GET", f"accounts/{account_id}")


@contextmanager
def observed_bus(target: Target, account_id_prefix: str = "") -> Iterator[str]:
    """A queue receiving the stack's domain events (optionally of some accounts only)."""
    bus = target.output(STACK, "EventBusName")
    pattern: dict[str, Any] = {"detail-type": list(DOMAIN_EVENT_TYPES)}
    if account_id_prefix:
        pattern["detail"] = {"account_id": [{"prefix": account_id_prefix}]}
    queue = target.subscribe_to_bus(bus, pattern)
    try:
        yield queue
    finally:
        target.unsubscribe_from_bus(bus, queue)


def collect_domain_events(
    target: Target, queue: str, account_id: str, versions: int, *, timeout: float = PUBLISH_TIMEOUT
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Domain events of ``account_id`` keyed by (account, version), until all ``versions``."""
    seen: dict[tuple[str, int], list[dict[str, Any]]] = {}

    def complete() -> bool:
        for body in target.receive_messages(queue):
            event = json.loads(body)
            detail = event["detail"]
            seen.setdefault((detail["account_id"], detail["version"]), []).append(event)
        return all((account_id, version) in seen for version in range(1, versions + 1))

    target.wait_for(
        f"domain events 1..{versions} of account {account_id} on the bus",
        complete,
        timeout=timeout,
        interval=0.3,
    )
    return seen


def happy_path(target: Target, transcript: Transcript) -> None:
    with observed_bus(target) as queue:
        account_id = open_account(target)
        expect(command(target, account_id, "credit", 10_000), 200, "credit")
        withdrawn = expect(command(target, account_id, "withdraw", 2_500), 200, "withdraw")
        state = expect(read(target, account_id), 200, "read").body
        if (state["balance"], state["version"]) != (7_500, 3):
            raise ScenarioFailedError(f"expected balance 7500 at version 3, got {state}")
        if withdrawn.body["event"]["type"] != "AccountWithdrawn":
            raise ScenarioFailedError(f"unexpected withdrawal event {withdrawn.body}")
        history = target.call_api(api(target), "GET", f"accounts/{account_id}/events?limit=2")
        expect(history, 200, "history")
        if [e["version"] for e in history.body["events"]] != [1, 2] or not history.body.get(
            "next_cursor"
        ):
            raise ScenarioFailedError(f"expected the first page of two events, got {history.body}")
        seen = collect_domain_events(target, queue, account_id, 3)
    types = [seen[(account_id, v)][0]["detail-type"] for v in (1, 2, 3)]
    if types != list(DOMAIN_EVENT_TYPES):
        raise ScenarioFailedError(f"unexpected domain events {types}")
    transcript.say(f"domain events on the bus: {', '.join(types)}")


def overdraft_refused(target: Target, transcript: Transcript) -> None:
    account_id = open_account(target)
    expect(command(target, account_id, "credit", 500), 200, "credit")
    refused = command(target, account_id, "withdraw", 501)
    if refused.status != 409 or refused.body.get("error") != "insufficient_funds":
        raise ScenarioFailedError(f"expected 409 insufficient_funds, got {refused.body}")
    state = expect(read(target, account_id), 200, "read").body
    if (state["balance"], state["version"]) != (500, 2):
        raise ScenarioFailedError(f"the refused withdrawal changed the account: {state}")
    transcript.say("withdrawal refused; balance and version unchanged")


def bad_amount(target: Target, transcript: Transcript) -> None:
    account_id = open_account(target)
    for amount in (0, -5, 10.5, "10"):
        response = command(target, account_id, "credit", amount)
        if response.status != 400 or response.body.get("error") != "invalid_request":
            raise ScenarioFailedError(f"amount {amount!r}: expected 400, got {response.body}")
    state = expect(read(target, account_id), 200, "read").body
    if state["version"] != 1:
        raise ScenarioFailedError(f"a refused command wrote an event: {state}")
    transcript.say("0, -5, 10.5 and '10' refused with 400; nothing written")


SCENARIOS = [
    Scenario("happy path: open, credit, withdraw, read; events on the bus", happy_path),
    Scenario("failure: an overdraft is refused with 409, nothing written", overdraft_refused),
    Scenario("bad input: amounts refused with 400", bad_amount),
]
