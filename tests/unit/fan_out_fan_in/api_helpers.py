"""Helpers for the fan-out API tests: what was written and queued, and how it was sent."""

from __future__ import annotations

import json
from typing import Any

from tests.support.events import ACCOUNT_ID

ARN_PREFIX = f"arn:aws:iam::{ACCOUNT_ID}"


def assert_nothing_written(infra: Any) -> None:
    assert infra.jobs() == []
    assert infra.results() == []
    assert infra.queue_depth() == 0


def queued_bodies(infra: Any) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while records := infra.receive_records():
        bodies += [json.loads(record["body"]) for record in records]
    return bodies


def count_send_calls(api: Any) -> list[int]:
    """Record the number of entries of every SendMessageBatch the ventilator makes."""
    calls: list[int] = []

    def before_call(params: dict[str, Any], **_: Any) -> None:
        calls.append(len(params["Entries"]))

    api.queue._client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", before_call
    )
    return calls
