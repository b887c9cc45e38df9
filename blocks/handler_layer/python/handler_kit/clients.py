"""The AWS client settings every function uses: bounded waits and standard retries.

botocore waits 60 s to connect and 60 s for each read by default, so one stalled
connection outlasts an API function's 10 s, a worker's batch budget or the recursive
processor's safety margin before its first retry starts. Here an attempt waits a few
seconds to connect and for each read: DynamoDB, SQS, Lambda, Scheduler and EventBridge
answer in milliseconds, and an S3 range streams without such gaps. A call whose attempt
timed out is retried (standard mode), and a retry of a write whose reply was lost is
what ``handler_kit.dynamodb`` and ``handler_kit.status_transitions`` tell apart from
another caller's write. (A timeout while reading a streamed body, after the call has
returned, is not retried by botocore: ``line_reader`` retries its S3 ranges itself.)

A call whose every attempt stalls costs about ``total attempts x (connect + read)``,
plus backoff (standard mode backs off 50 ms and up after a timeout, 1 s and up after
throttling); connect timeouts also bound the TLS handshake and each send of a body.
"""

from __future__ import annotations

from botocore.config import Config

CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 5
#: A short attempt, for a call that must fit a per-record budget or a margin: 1 s to
#: connect, 2 s to read (DynamoDB and SQS answer in milliseconds).
SHORT_ATTEMPT_TIMEOUTS_S = (1, 2)
#: The longest a short attempt can take, in seconds.
SHORT_ATTEMPT_S = sum(SHORT_ATTEMPT_TIMEOUTS_S)


def client_config(
    *,
    max_attempts: int,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    read_timeout_s: float = READ_TIMEOUT_S,
    max_pool_connections: int = 10,
) -> Config:
    """A client's settings: ``max_attempts`` attempts of a call in all (the first and
    its retries; botocore's own ``max_attempts`` key counts retries only).

    Five suit a worker whose event source retries the event later anyway and whose
    per-record budget covers a stalled attempt; three of shorter attempts a function that
    must finish within a margin (an API, the event publisher); one a caller that retries
    by itself (the fan-out ventilator) or gives up (the event-sourcing snapshot).
    ``max_pool_connections`` is the connections kept (one per thread that sends at once).

    >>> config = client_config(max_attempts=3)
    >>> config.connect_timeout, config.read_timeout, config.retries
    (2, 5, {'mode': 'standard', 'total_max_attempts': 3})
    """
    return Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
    )


def api_client_config(*, max_pool_connections: int = 10) -> Config:
    """The settings of an API function's clients: three attempts of at most 4 s each (1 s
    to connect, 3 s per read), so a stalled attempt and its retry fit in the function's
    10 s and the caller gets 503 rather than a timeout. Only a call that stalls three
    times outlasts it (the function then times out and API Gateway answers 5xx).

    >>> api_client_config().retries
    {'mode': 'standard', 'total_max_attempts': 3}
    """
    return client_config(
        max_attempts=3,
        connect_timeout_s=1,
        read_timeout_s=3,
        max_pool_connections=max_pool_connections,
    )


def worker_client_config() -> Config:
    """A queue worker's clients: five short attempts (:data:`SHORT_ATTEMPT_TIMEOUTS_S`).

    A worker starts a record only with its work and an overhead left that covers one
    stalled attempt (3 s), up to 1 s of backoff before its retry (botocore's standard
    mode backs off 25-50 ms after a timeout since its 2026 retry update, up to 1 s
    before it, and Lambda's runtime brings its own botocore) and the calls: 5 s.

    >>> config = worker_client_config()
    >>> config.connect_timeout, config.read_timeout, config.retries
    (1, 2, {'mode': 'standard', 'total_max_attempts': 5})
    """
    connect_s, read_s = SHORT_ATTEMPT_TIMEOUTS_S
    return client_config(max_attempts=5, connect_timeout_s=connect_s, read_timeout_s=read_s)


def one_attempt_client_config(*, max_pool_connections: int = 10) -> Config:
    """One short attempt (:data:`SHORT_ATTEMPT_S` at most) and no retry: for a caller
    that retries by itself, each time only if an attempt still fits, or that gives up
    (a best-effort write after a commit).

    >>> one_attempt_client_config().retries
    {'mode': 'standard', 'total_max_attempts': 1}
    """
    connect_s, read_s = SHORT_ATTEMPT_TIMEOUTS_S
    return client_config(
        max_attempts=1,
        connect_timeout_s=connect_s,
        read_timeout_s=read_s,
        max_pool_connections=max_pool_connections,
    )
