"""The AWS client settings every function uses: bounded waits and standard retries.

botocore waits 60 s to connect and 60 s for each read by default, so one hung
connection outlasts API Gateway's 29 s, a worker's batch budget or the recursive
processor's safety margin before its first retry starts. Here a call waits
:data:`CONNECT_TIMEOUT_S` to connect and :data:`READ_TIMEOUT_S` for each read: DynamoDB,
SQS, Lambda, Scheduler and EventBridge answer in milliseconds, and an S3 range streams
without five-second gaps. A call that times out is retried (standard mode), and a retry
of a write whose reply was lost is what ``handler_kit.dynamodb`` and
``handler_kit.status_transitions`` tell apart from another caller's write.

A call's worst case is ``max_attempts x (connect + read)`` plus the backoff between
attempts (standard mode: a random wait of up to 1, 2, 4, ... s): about 24 s with three
attempts, 50 s with five.
"""

from __future__ import annotations

from botocore.config import Config

CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 5


def client_config(*, max_attempts: int, max_pool_connections: int = 10) -> Config:
    """A client's settings, with ``max_attempts`` attempts of a call in all.

    Three suit a function that answers a caller who waits (an API, within API
    Gateway's 29 s) or must finish within a margin; five suit one whose event source
    retries the whole event later anyway (a queue's worker, a stream's consumer).
    ``max_pool_connections`` is the connections kept (one per thread that sends at once).

    >>> config = client_config(max_attempts=3)
    >>> config.connect_timeout, config.read_timeout, config.retries
    (2, 5, {'mode': 'standard', 'max_attempts': 3})
    """
    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
    )
