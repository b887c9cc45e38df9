"""EventBridge's retry policy for a rule target whose delivery failed.

EventBridge retries a delivery that failed with a retriable error (the target
unavailable: throttled, a server error) with exponential back-off and jitter, until
the target's ``RetryPolicy`` runs out (``MaximumRetryAttempts``, default 185, or
``MaximumEventAgeInSeconds``, default 86,400), then sends the event to the target's
dead-letter queue. Errors such as a missing permission or a target that does not
exist are not retried: they go to the dead-letter queue at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 185
DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 86_400
#: Stage seconds before the first retry; doubled per attempt, up to the cap, and
#: jittered (AWS documents exponential back-off with jitter, not its figures).
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_DELAY_SECONDS = 300.0
#: Error codes of a target that is unavailable for now (throttled or failing).
RETRIABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceException",
    }
)


def retriable(error: Exception) -> bool:
    """Whether an AWS call's error is one EventBridge retries (throttled, 5xx)."""
    response: dict[str, Any] = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code in RETRIABLE_CODES or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """A target's ``RetryPolicy``."""

    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age_seconds: float = DEFAULT_MAXIMUM_EVENT_AGE_SECONDS

    @classmethod
    def of(cls, target: dict[str, Any]) -> RetryPolicy:
        policy = target.get("RetryPolicy") or {}
        return cls(
            int(policy.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS)),
            float(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE_SECONDS)),
        )

    def next_delay(self, retries_done: int, age_seconds: float, rng: random.Random) -> float | None:
        """Stage seconds to wait before the next retry; None when the policy is spent."""
        if retries_done >= self.maximum_retry_attempts:
            return None
        ceiling = min(MAX_RETRY_DELAY_SECONDS, FIRST_RETRY_SECONDS * 2**retries_done)
        delay = rng.uniform(ceiling / 2, ceiling)
        if age_seconds + delay > self.maximum_event_age_seconds:
            return None
        return delay


def string_attributes(values: dict[str, str]) -> dict[str, dict[str, str]]:
    """SQS message attributes of type String: how EventBridge and Scheduler describe, on
    a message they dead-letter, why it failed (``ERROR_CODE``, ``TARGET_ARN``, ...)."""
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}
