"""Requests that overlap at one DynamoDB call, run one at a time (moto is not thread-safe).

Each request, right before its own call, lets the next one run to the end: all of them
read the state before any writes, the innermost writes first, and the others meet its
write. That is the worst interleaving of N clients retrying with one key, made
deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
Answer = TypeVar("Answer")


def interleaved(
    client: Any,
    operations: str | Sequence[str],
    requests: Sequence[T],
    send: Callable[[T], Answer],
) -> tuple[list[Answer], Answer]:
    """Send ``requests``, each nested just before its first ``operations`` call on ``client``.

    Parameters
    ----------
    client:
        The boto3 client the handler module uses (its events are hooked).
    operations:
        The DynamoDB operation they overlap at, e.g. ``"PutItem"``, or several (the
        first call of any of them is where the next request runs).
    requests:
        What each client sends.
    send:
        Sends one request; returns its answer.

    Returns
    -------
    tuple
        Every answer in request order, and the innermost's (the one that wrote first).
    """
    answers: dict[int, Answer] = {}
    started = {"n": 0}

    def next_request_runs_first(**_: Any) -> None:
        if started["n"] < len(requests) - 1:
            started["n"] += 1
            index = started["n"]
            answers[index] = send(requests[index])

    names = [operations] if isinstance(operations, str) else list(operations)
    for name in names:
        client.meta.events.register(f"before-call.dynamodb.{name}", next_request_runs_first)
    try:
        answers[0] = send(requests[0])
    finally:
        for name in names:
            client.meta.events.unregister(f"before-call.dynamodb.{name}", next_request_runs_first)
    return [answers[i] for i in range(len(requests))], answers[len(requests) - 1]
