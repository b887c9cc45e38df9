"""Helpers for the fan-out worker and reducer flow tests."""

from __future__ import annotations

from typing import Any


def submit(handlers: Any, body: dict[str, Any]) -> str:
    response = handlers.post(body)
    assert response.status == 202, response.body
    return str(response.body["job_id"])


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def expected_aggregate(
    values: list[int], failed: tuple[int, ...] | list[int] = ()
) -> dict[str, Any]:
    squares = [v * v for i, v in enumerate(values) if i not in failed]
    return {
        "count": len(squares),
        "sum": sum(squares),
        "min": min(squares) if squares else None,
        "max": max(squares) if squares else None,
        "failed": len(failed),
        "failed_subtasks": sorted(failed),
    }
