"""Helpers for the fan-out worker and reducer flow tests.

The expected aggregate is :func:`patterns.fan_out_fan_in.scenarios.expected_aggregate`,
the one the demo and the e2e tests check against.
"""

from __future__ import annotations

from typing import Any


def submit(handlers: Any, body: dict[str, Any]) -> str:
    response = handlers.post(body)
    assert response.status == 202, response.body
    return str(response.body["job_id"])


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
