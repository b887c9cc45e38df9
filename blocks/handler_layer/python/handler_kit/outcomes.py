"""What a function did with one event, counted as a metric and logged."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

OutcomeT = TypeVar("OutcomeT", bound=Enum)


def report_outcome(
    metrics: Metrics,
    metric_names: Mapping[OutcomeT, str],
    outcome: OutcomeT,
    log: Callable[..., Any],
    message: str,
) -> None:
    """Count ``outcome`` under its metric name and log ``message`` with its value.

    Parameters
    ----------
    metrics : Metrics
        The function's Powertools metrics (flushed by its handler decorator).
    metric_names : Mapping
        The metric of each outcome (several outcomes may share one).
    outcome : Enum
        What the function did.
    log : Callable
        The logger method of the level to log at (``logger.info``, ``logger.debug``).
    message : str
        The log message; the outcome's value goes with it as ``outcome``.
    """
    metrics.add_metric(name=metric_names[outcome], unit=MetricUnit.Count, value=1)
    log(message, outcome=outcome.value)
