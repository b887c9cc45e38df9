"""Telling an AWS call that may succeed if repeated from one that will not.

An API answers the first kind 503 with ``Retry-After`` and the second 500: a call AWS
refused (``AccessDenied``, ``ValidationException``, ``ResourceNotFoundException``) is a
fault of the deployment or of the code, and a client that retries it only adds load.

The codes are those botocore's standard retry mode retries without an operation model
(``botocore.retries.standard``: its throttling and transient codes and statuses),
written out here rather than imported: Lambda's runtime provides botocore and updates
it, and those lists are not botocore's public API. A unit test fails when botocore's
lists hold a code these do not. Added to them: DynamoDB's conflicts with a transaction
in flight, which a later attempt gets past.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

#: Error codes of a throttled call (botocore's ``ThrottledRetryableChecker``).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
#: Error codes of a call that timed out on the service's side (botocore's
#: ``TransientRetryableChecker``).
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
#: A write that met a transaction in flight on its item, or, on a global table, a
#: concurrent write in another Region (DynamoDB's error table:
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
CONFLICT_CODES = frozenset({"TransactionConflictException", "ReplicatedWriteConflictException"})
#: HTTP statuses of a throttled or failing service (botocore's checkers: 429, 500, 502,
#: 503, 504).
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Reasons DynamoDB gives for a cancelled ``TransactWriteItems`` that a later attempt may
#: get past (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html,
#: TransactionCanceledException). A store that expects one of these handles it itself.
TRANSIENT_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
_RETRYABLE_CODES = THROTTLING_CODES | TRANSIENT_CODES | CONFLICT_CODES


def is_transient(exc: ClientError | BotoCoreError) -> bool:
    """Whether the failed call may succeed if made again later.

    True for a throttled call, a service's 5xx or its own timeout, a conflict with a
    transaction in flight, and a connection that failed or an answer that came too
    late; False for everything else: a call AWS refused (HTTP 4xx), and a
    ``BotoCoreError`` raised before sending (``ParamValidationError``, no credentials).

    Examples
    --------
    >>> from botocore.exceptions import EndpointConnectionError, ParamValidationError
    >>> def refused(code, status):
    ...     error = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    ...     return ClientError(error, "GetItem")
    >>> is_transient(refused("ProvisionedThroughputExceededException", 400))
    True
    >>> is_transient(refused("InternalServerError", 500))
    True
    >>> is_transient(refused("AccessDeniedException", 400))
    False
    >>> is_transient(EndpointConnectionError(endpoint_url="https://dynamodb.invalid"))
    True
    >>> is_transient(ParamValidationError(report="missing TableName"))
    False
    """
    if isinstance(exc, BotoCoreError):
        return isinstance(exc, ConnectionError | HTTPClientError)
    error = exc.response.get("Error") or {}
    if error.get("Code") in _RETRYABLE_CODES:
        return True
    if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in TRANSIENT_STATUSES:
        return True
    reasons = {reason.get("Code") for reason in exc.response.get("CancellationReasons") or []}
    return bool(reasons & TRANSIENT_CANCELLATIONS)
