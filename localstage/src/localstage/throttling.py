"""What Lambda does with an event it could not run because the function was throttled.

A function with a reserved concurrency runs at most that many invocations at once (none
at 0). A synchronous caller gets 429 ``TooManyRequestsException`` at once
(:mod:`localstage.invoke`); the others keep the event and try again later, each in its
own way:

- Asynchronous invocations go back to the function's event queue and are retried with
  exponential back-off, from 1 second up to 5 minutes, until they succeed or reach
  ``MaximumEventAgeInSeconds`` (then the on-failure destination or DLQ gets them).
  A throttle is not an invocation: it uses none of ``MaximumRetryAttempts``.
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
- SQS event source mappings leave the batch's messages in the queue: they become
  visible again after the visibility timeout, their receive count up by one, so a
  redrive policy can move them to the DLQ without the function ever running.
  https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
- DynamoDB stream mappings retry the batch (the shard waits) until the records expire
  or pass ``MaximumRecordAgeInSeconds``; ``MaximumRetryAttempts`` counts function
  errors only, not throttles.
  https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
"""

from __future__ import annotations

#: Lambda's retry interval for a throttled asynchronous event: from 1 s, doubling, to 5 min.
ASYNC_THROTTLE_BACKOFF_SECONDS = (1.0, 300.0)


def throttle_backoff(
    throttles: int, bounds: tuple[float, float] = ASYNC_THROTTLE_BACKOFF_SECONDS
) -> float:
    """Stage seconds to wait after the ``throttles``-th throttle in a row (1, 2, 4, ...).

    >>> [throttle_backoff(n) for n in (1, 2, 3, 10, 20)]
    [1.0, 2.0, 4.0, 300.0, 300.0]
    """
    first, last = bounds
    return min(first * 2 ** min(max(throttles - 1, 0), 30), last)
