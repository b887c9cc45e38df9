"""AWS calls that fail the way they do after the SDK's own retries, and the answer every
API gives them (``handler_kit.error_answers.dependency_failures``).

A failure is a botocore ``before-call`` hook on the handler's own client: the request is
never sent, so nothing is written, and the handler sees the exception the SDK raises
once its retries are spent.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore import xform_name
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from tests.support.events import HttpResponse, assert_json_error


def _client_error(operation: str, code: str, status: int, message: str) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


def throttled(operation: str, code: str = "ProvisionedThroughputExceededException") -> ClientError:
    """The ``ClientError`` of a throttled call (DynamoDB's code unless told another)."""
    return _client_error(operation, code, 400, "Rate exceeded")


def unreachable(service: str = "dynamodb") -> BotoCoreError:
    """The ``BotoCoreError`` of an endpoint that cannot be reached."""
    return EndpointConnectionError(endpoint_url=f"https://{service}.us-east-1.amazonaws.com")


def transaction_conflict(operation: str) -> ClientError:
    """The ``ClientError`` of a write that met a DynamoDB transaction in flight on its item."""
    return _client_error(operation, "TransactionConflictException", 400, "in a transaction")


def denied(operation: str) -> ClientError:
    """The ``ClientError`` of a call the function's role may not make."""
    return _client_error(operation, "AccessDeniedException", 400, "not authorized")


#: What a call can end in after the SDK's retries, by name (for ``parametrize``): failures
#: a later attempt may get past, then calls AWS refused or botocore never sent.
FAILURES: dict[str, Exception] = {
    "provisioned-throughput": throttled("GetItem"),
    "throttling": throttled("TransactWriteItems", "ThrottlingException"),
    "internal-error": _client_error("GetItem", "InternalServerError", 500, "Internal error"),
    "transaction-conflict": transaction_conflict("PutItem"),
    "unreachable": unreachable(),
    "access-denied": denied("GetItem"),
    "missing-table": _client_error("GetItem", "ResourceNotFoundException", 400, "no table"),
    "not-sent": ParamValidationError(report="Invalid type for parameter Key"),
}
#: Error codes among :data:`FAILURES` that no retry cures.
_REFUSED_CODES = frozenset({"AccessDeniedException", "ResourceNotFoundException"})


def is_refused(failure: Exception) -> bool:
    """Whether ``failure`` is one no retry cures (answered 500, without Retry-After): a
    call AWS refused, or one botocore did not send."""
    if isinstance(failure, ClientError):
        return failure.response.get("Error", {}).get("Code") in _REFUSED_CODES
    return isinstance(failure, ParamValidationError)


@contextmanager
def _hooked(client: Any, hooks: dict[str, Callable[..., Any]], result: Any) -> Iterator[Any]:
    """Register ``hooks`` (event name to handler) on ``client`` within the block."""
    for event, hook in hooks.items():
        client.meta.events.register(event, hook)
    try:
        yield result
    finally:
        for event, hook in hooks.items():
            client.meta.events.unregister(event, hook)


@contextmanager
def failing_calls(
    client: Any, error: Exception, operation: str | None = None
) -> Iterator[list[str]]:
    """Within the block, every call of ``client`` (only ``operation``'s, when given)
    raises ``error`` instead of being sent; yields the names of the calls that failed."""
    failed: list[str] = []
    service = client.meta.service_model.service_name
    event = f"before-call.{service}" + (f".{operation}" if operation else "")

    def fail(model: Any, **_: Any) -> None:
        failed.append(model.name)
        raise copy.copy(error)  # a fresh exception each time: no traceback of earlier calls

    with _hooked(client, {event: fail}, failed):
        yield failed


@contextmanager
def first_reply_lost(
    client: Any, operation: str, when: Callable[[dict[str, Any]], bool]
) -> Iterator[list[dict[str, Any]]]:
    """Within the block, the first ``operation`` call whose parameters ``when`` accepts is
    applied twice: once as sent, its reply lost (a read timeout, a dropped connection, a
    500 after the write), then once more as the SDK's retry of the same request, whose
    answer the handler sees. A conditional write then meets its own first write.

    Yields the parameters of the call whose reply was lost (empty if none matched).
    """
    lost: list[dict[str, Any]] = []
    service = client.meta.service_model.service_name
    method = getattr(client, xform_name(operation))

    def apply_first(params: dict[str, Any], **_: Any) -> None:
        if lost or not when(params):
            return
        lost.append(dict(params))
        method(**params)  # applied; its reply never reaches the caller

    with _hooked(client, {f"before-parameter-build.{service}.{operation}": apply_first}, lost):
        yield lost


@contextmanager
def attempts_stall(
    client: Any,
    operation: str,
    advance: Callable[[float], None],
    when: Callable[[dict[str, Any]], bool] = lambda params: True,
    *,
    count: float = 1,
) -> Iterator[list[float]]:
    """Within the block, the first ``count`` attempts (``math.inf``: all) of every
    ``operation`` call whose parameters ``when`` accepts stall: each waits the client's
    own connect and read timeouts (``advance`` moves the fake clock) and times out, and
    botocore retries it while it has attempts left (its backoff advances the clock too,
    no real sleep). Yields the seconds each stall and backoff cost."""
    import botocore.endpoint

    config = client.meta.config
    stall_s = float(config.connect_timeout) + float(config.read_timeout)
    waited: list[float] = []
    attempts = {"n": 0}
    service = client.meta.service_model.service_name

    def new_call(params: dict[str, Any], **_: Any) -> None:
        attempts["n"] = 0 if when(params) else -1

    def stall_first(request: Any, **_: Any) -> None:
        if attempts["n"] < 0:
            return
        attempts["n"] += 1
        if attempts["n"] <= count:
            advance(stall_s)
            waited.append(stall_s)
            raise ReadTimeoutError(endpoint_url=request.url)

    def backoff(seconds: float) -> None:
        advance(seconds)
        waited.append(seconds)

    class _Time:
        sleep = staticmethod(backoff)

    # botocore.endpoint sleeps its backoff with time.sleep (its only use of time).
    real_time = getattr(botocore.endpoint, "time")  # noqa: B009
    hooks: dict[str, Callable[..., Any]] = {
        f"before-parameter-build.{service}.{operation}": new_call,
        f"before-send.{service}.{operation}": stall_first,
    }
    setattr(botocore.endpoint, "time", _Time)  # noqa: B010
    try:
        with _hooked(client, hooks, waited):
            yield waited
    finally:
        setattr(botocore.endpoint, "time", real_time)  # noqa: B010


@contextmanager
def calls_take(client: Any, advance: Callable[[float], None], seconds: float) -> Iterator[None]:
    """Within the block, every attempt of every call of ``client`` takes ``seconds`` of
    the fake clock (``advance``), as a real round trip does."""

    def take(**_: Any) -> None:
        advance(seconds)

    service = client.meta.service_model.service_name
    with _hooked(client, {f"before-send.{service}": take}, None):
        yield


@contextmanager
def backoff_before_2026(active: bool = True) -> Iterator[None]:
    """Within the block (if ``active``), botocore backs off as it did before its 2026
    retry update, at the worst its jitter allows: 1 s doubling after any retryable error
    (the update brought it to 50 ms, 25 ms for DynamoDB, except after throttling). Lambda's
    runtime brings its own botocore, which may predate the update."""
    from botocore.retries import standard

    def delay_amount(self: Any, context: Any) -> float:
        return float(min(2 ** (context.attempt_number - 1), 20))

    original = standard.ExponentialBackoff.delay_amount
    if active:
        standard.ExponentialBackoff.delay_amount = delay_amount  # type: ignore[method-assign]
    try:
        yield
    finally:
        standard.ExponentialBackoff.delay_amount = original  # type: ignore[method-assign]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def recorded_logs(logger: Any) -> Iterator[list[logging.LogRecord]]:
    """The records a handler module's Powertools ``logger`` writes within the block.

    (Its own handler writes to the ``sys.stdout`` of the first import of its service's
    logger, which ``capsys`` does not see.)
    """
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def assert_dependency_failed(
    response: HttpResponse, *, logs: list[logging.LogRecord], output: str, refused: bool = False
) -> None:
    """The answer of an AWS call that failed: 503 ``service_unavailable`` with
    ``Retry-After`` (500 ``server_error`` without it when AWS ``refused`` the call), the
    failure logged with its traceback (``logs``) and counted as ``DependencyFailed`` (in
    ``output``, what the invocation printed: its metrics)."""
    if refused:
        assert_json_error(response, 500, "server_error")
        assert "retry-after" not in response.headers
        expected = (["AWS request refused"], ["AWS request not sent"])
    else:
        assert_json_error(response, 503, "service_unavailable")
        assert int(response.headers["retry-after"]) >= 1
        expected = (["AWS request failed"], ["AWS call failed in transit"])
    failures = [r for r in logs if r.levelno == logging.ERROR and r.exc_info]
    assert [r.getMessage() for r in failures] in expected
    assert '"DependencyFailed"' in output


def answer_while_failing(
    call: Callable[[], HttpResponse],
    *,
    logger: Any,
    client: Any,
    failure: Exception,
    capsys: Any,
) -> tuple[HttpResponse, list[str]]:
    """``call()`` while every call of ``client`` raises ``failure``: its answer, checked to
    be a failed dependency's (:func:`assert_dependency_failed`, from ``logger``'s records
    and what the invocation printed), and the names of the calls that failed."""
    with recorded_logs(logger) as logs, failing_calls(client, failure) as failed:
        response = call()
    output = capsys.readouterr().out
    assert_dependency_failed(response, logs=logs, output=output, refused=is_refused(failure))
    return response, failed


def answer_of_its_own(
    call: Callable[[], HttpResponse],
    *,
    logger: Any,
    client: Any,
    failure: Exception,
    capsys: Any,
    metric: str,
) -> HttpResponse:
    """``call()`` while every call of ``client`` raises ``failure``, for a failure the route
    answers itself: checked to be a 503 ``service_unavailable`` counted as ``metric``, not
    as a failed dependency (neither counted nor logged as one)."""
    with recorded_logs(logger) as logs, failing_calls(client, failure):
        response = call()
    assert_json_error(response, 503, "service_unavailable")
    output = capsys.readouterr().out
    assert f'"{metric}"' in output and '"DependencyFailed"' not in output
    assert "AWS request failed" not in [record.getMessage() for record in logs]
    return response
