"""Event sourcing vs history length: items per balance read, requests per command and read.

The figures come from the pattern's own code (``patterns/event_sourcing/runtime/``:
``account_store.EventStore``, ``account_service.execute_command`` and ``get_account``)
on in-process moto, with every DynamoDB call counted by a botocore hook
(:class:`bench.handler_code.CallTally`).
A booted localstage sees request counts but not the items a Query read, and 10,000
commands through its API would not fit the bench's time.

History up to ``N - K`` events is written in ``BatchWriteItem`` requests of the items
the code itself builds (``AccountEvent.to_item``, folded with ``AccountState.apply``),
with the snapshot the design would hold stored by ``EventStore.put_snapshot``; only
the commands skip their reads there (moto's Query reads the whole partition, so a
command costs about 0.3 s at 10,000 events). The last ``K`` events before each
measured length are appended by ``execute_command`` itself, and the balance is read
after each of them, so the reads cover one whole snapshot cycle, its worst point
included; the ``K`` commands after it give the requests per command.
"""

from __future__ import annotations

import inspect
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import boto3
from moto import mock_aws

from bench.figures import Figure, unmeasured
from bench.handler_code import CallTally, describe, load_handler_module
from tests.support.moto_resources import create_table

HISTORY_LENGTHS = (10, 1_000, 10_000)
#: Seconds the section may take; a length not reached by then is reported as skipped.
BUDGET_S = 90.0
TABLE = "Event sourcing vs history length (real handler code, in-process moto)"
_TABLE_NAME = "bench-event-sourcing"
_REGION = "us-east-1"
#: BatchWriteItem takes at most 25 items.
_BATCH_ITEMS = 25
#: Amounts of the commands: credits of 7 and, every third command, a withdrawal of 5.
_CREDIT, _WITHDRAWAL = 7, 5


@dataclass(frozen=True)
class HistoryPoint:
    """What reads and commands cost on an account of ``events`` events.

    Attributes
    ----------
    events : int
        History length the reads end at (the commands start from it).
    items_per_read : list[int]
        Items each balance read read, one read after each of the last K events.
    requests_per_read : Counter[str]
        Requests of those reads, summed.
    requests_per_command : Counter[str]
        Requests of the K commands after ``events``, summed (one snapshot among them).
    reads, commands : int
        How many reads and commands were measured.
    """

    events: int
    items_per_read: list[int]
    requests_per_read: Counter[str]
    requests_per_command: Counter[str]
    reads: int
    commands: int


def deployed_snapshot_interval() -> int:
    """K as the stacks deploy it: ``EventSourcing``'s ``snapshot_interval`` default.

    ``patterns/event_sourcing/stack.py`` passes none and cdk.json's ``stage_tuning`` has none
    for this pattern, so every stage (``local`` included) gets the construct's default.
    """
    from patterns.event_sourcing.construct import EventSourcing

    default = inspect.signature(EventSourcing.__init__).parameters["snapshot_interval"].default
    return int(default)


@contextmanager
def _event_table() -> Iterator[Any]:
    """An in-process moto DynamoDB client with the pattern's event table (keys as deployed)."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=_REGION)
        create_table(client, _TABLE_NAME, ("account_id", "S"), ("version", "N"))
        yield client


def _command_of(version: int, models: Any) -> tuple[Any, int]:
    """The command that appends ``version``: mostly credits, every third a withdrawal."""
    if version % 3 == 0:
        return models.CommandType.WITHDRAW, _WITHDRAWAL
    return models.CommandType.CREDIT, _CREDIT


def _write_history(
    client: Any, store: Any, state: Any, until: int, *, models: Any, snapshot_interval: int
) -> Any:
    """Append events until version ``until`` in batches; returns the new state.

    The events are those the commands would append (same amounts, balances folded by
    ``AccountState.apply``) and the newest snapshot is stored by the real
    ``put_snapshot``, so the table ends as the commands would leave it.
    """
    clock = load_handler_module("event_sourcing", "handler_kit.clock")
    now = clock.iso_timestamp(datetime.now(UTC))
    batch: list[dict[str, Any]] = []
    snapshot = None
    while state.version < until:
        command, amount = _command_of(state.version + 1, models)
        kind = models.EventType.WITHDRAWN
        balance = state.balance - amount
        if command is models.CommandType.CREDIT:
            kind, balance = models.EventType.CREDITED, state.balance + amount
        event = models.AccountEvent(
            account_id=state.account_id,
            version=state.version + 1,
            type=kind,
            amount=amount,
            balance=balance,
            occurred_at=now,
        )
        state = state.apply(event)
        batch.append({"PutRequest": {"Item": event.to_item()}})
        if event.version % snapshot_interval == 0:
            snapshot = state
        if len(batch) == _BATCH_ITEMS or state.version == until:
            client.batch_write_item(RequestItems={_TABLE_NAME: batch})
            batch = []
            if snapshot is not None:
                store.put_snapshot(snapshot)
                snapshot = None
    return state


def measure_history_points(
    lengths: tuple[int, ...] = HISTORY_LENGTHS,
    *,
    budget_s: float = BUDGET_S,
    log: Callable[[str], Any] = print,
) -> tuple[list[HistoryPoint], int, str]:
    """Grow one account through ``lengths`` and measure reads and commands at each.

    Returns
    -------
    tuple
        The points measured, K (the snapshot interval the stacks deploy) and why the
        remaining lengths were skipped ("" if none).
    """
    models = load_handler_module("event_sourcing", "account_models")
    store_module = load_handler_module("event_sourcing", "account_store")
    service = load_handler_module("event_sourcing", "account_service")
    k = deployed_snapshot_interval()
    settings = models.AccountSettings(snapshot_interval=k)
    began = time.monotonic()
    points: list[HistoryPoint] = []
    with _event_table() as client:
        store = store_module.EventStore(client, _TABLE_NAME)
        tally = CallTally()
        tally.attach(client)
        opened = service.open_account(store, now=datetime.now(UTC), caller="bench")
        account_id = opened.body["account_id"]
        version = 1

        def run_command(new_version: int) -> None:
            kind, amount = _command_of(new_version, models)
            service.execute_command(store, account_id, kind, amount, settings=settings)

        for events in lengths:
            if time.monotonic() - began > budget_s:
                return points, k, f"over the section's budget of {budget_s:g} s"
            log(f"    {events:,} events")
            state = service.get_account(store, account_id, settings=settings)
            state = _write_history(
                client,
                store,
                state,
                max(events - k, state.version),
                models=models,
                snapshot_interval=k,
            )
            version = state.version
            items: list[int] = []
            read_requests: Counter[str] = Counter()
            while version < events:
                version += 1
                run_command(version)
                tally.reset()
                service.get_account(store, account_id, settings=settings)
                items.append(tally.items_read)
                read_requests += tally.requests
            tally.reset()
            for _ in range(k):
                version += 1
                run_command(version)
            points.append(
                HistoryPoint(
                    events=events,
                    items_per_read=items,
                    requests_per_read=read_requests,
                    requests_per_command=Counter(tally.requests),
                    reads=len(items),
                    commands=k,
                )
            )
    return points, k, ""


def event_sourcing_figures(log: Callable[[str], Any] = print) -> list[Figure]:
    """Items per balance read, requests per read and per command at each history length."""
    points, k, skipped = measure_history_points(log=log)
    figures: list[Figure] = []
    command_floor = 3 + 1 / k
    for point in points:
        worst = max(point.items_per_read)
        per_read = sum(point.requests_per_read.values()) / point.reads
        per_command = sum(point.requests_per_command.values()) / point.commands
        # Every figure of a history length lies at that length on the table's curves.
        at_length = partial(
            Figure, table=TABLE, x=point.events, x_label="events in the account's history"
        )
        figures += [
            at_length(
                name=f"{point.events:,} events: items read per balance query (worst)",
                value=float(worst),
                unit="items",
                target=f"<= K + 1 = {k + 1} (K = snapshot interval {k})",
                met=worst <= k + 1,
                note=(
                    f"reads after each of the last {point.reads} events: "
                    f"{min(point.items_per_read)}..{worst} items "
                    "(GetItem snapshot + Query ScannedCount)"
                ),
                series="items read per balance query (worst of a snapshot cycle)",
            ),
            at_length(
                name=f"{point.events:,} events: requests per balance query",
                value=per_read,
                unit="requests",
                target="<= 2 (GetItem snapshot + one Query page)",
                met=per_read <= 2 + 1e-9,
                note=describe(point.requests_per_read),
                series="requests per balance query",
            ),
            at_length(
                name=f"{point.events:,} events: requests per command (credit/withdraw)",
                value=per_command,
                unit="requests",
                target=f"= 3 + 1/K = {command_floor:.3g} at every length",
                met=math.isclose(per_command, command_floor),
                note=(
                    f"{point.commands} commands from {point.events:,} events "
                    f"(GetItem, Query, PutItem; every K-th a snapshot PutItem): "
                    f"{describe(point.requests_per_command)}"
                ),
                series="requests per command",
            ),
        ]
    return figures + unmeasured(
        HISTORY_LENGTHS,
        len(points),
        table=TABLE,
        name=lambda events: f"{events:,} events: items read per balance query (worst)",
        unit="items",
        target=f"<= K + 1 = {k + 1}",
        reason=skipped,
    )
