"""Telling an AWS call that may succeed if repeated from one that will not.

An API answers the first kind 503 with ``Retry-After`` and the second 500: a call AWS
refused (``AccessDenied``, ``ValidationException``, ``ResourceNotFoundException``) is a
fault of the deployment or of the code, and a client that retries it only adds load.
The test is botocore's own: what its standard retry mode retries
(``botocore.retries.standard``), so the two never disagree about an error code.
"""

from __future__ import annotations

from types import SimpleNamespace

from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries.standard import (
    OrRetryChecker,
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)

#: Checks of botocore's standard mode that need no operation model: throttling codes,
#: transient codes, HTTP 500/502/503/504, connection errors and timeouts. Both have been
#: in botocore since its standard mode (1.15): Lambda's runtime provides botocore, and
#: its version lags the one this project tests with.
_RETRYABLE = OrRetryChecker([TransientRetryableChecker(), ThrottledRetryableChecker()])
#: Too Many Requests: newer botocore retries a 429 whose code the model does not name.
_THROTTLED_STATUS = 429

#: Reasons DynamoDB gives for a cancelled ``TransactWriteItems`` that a later attempt may
#: get past (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html,
#: TransactionCanceledException). botocore does not retry a cancelled transaction (its
#: status is 400); a store that expects one of these handles it itself.
_TRANSIENT_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


def _status_of(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def is_transient(exc: ClientError | BotoCoreError) -> bool:
    """Whether the failed call may succeed if made again later.

    True for what botocore's standard retry mode retries (a throttled or transient
    answer, an HTTP 429 or 5xx, an endpoint that could not be reached or answered too
    late) and for a transaction cancelled for a conflict or throttling; False for
    everything else: a refused call (HTTP 4xx), and a ``BotoCoreError`` raised before
    sending (``ParamValidationError``, missing credentials).

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
        return bool(_RETRYABLE.is_retryable(RetryContext(1, caught_exception=exc)))
    status = _status_of(exc)
    if status == _THROTTLED_STATUS:
        return True
    context = RetryContext(
        1,
        parsed_response=exc.response,
        http_response=SimpleNamespace(status_code=status) if status is not None else None,
    )
    if _RETRYABLE.is_retryable(context):
        return True
    reasons = {reason.get("Code") for reason in exc.response.get("CancellationReasons", []) or []}
    return bool(reasons & _TRANSIENT_CANCELLATIONS)
