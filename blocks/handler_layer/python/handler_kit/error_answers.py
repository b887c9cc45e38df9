"""How an API answers exceptions: one :class:`ErrorAnswer` per exception class, and the
answers every API gives an AWS call that failed (:func:`dependency_failures`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from handler_kit.aws_failures import is_transient
from handler_kit.responses import error_response


@dataclass(frozen=True)
class ErrorAnswer:
    """How an API answers one exception class (see :func:`answer_errors`).

    Attributes
    ----------
    status_code, code : int, str
        The status and the ``error`` field.
    message : str, optional
        The ``message`` field; ``str(exc)`` when not given.
    headers : Mapping[str, str]
        Headers of this answer (on top of the API's own).
    metric : str, optional
        Counted once per answer.
    log : tuple of (str, str), optional
        ``(level, message)``: logged with ``reason=str(exc)``, or with the traceback
        when the level is ``"exception"``.
    """

    status_code: int
    code: str
    message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    metric: str | None = None
    log: tuple[str, str] | None = None


def unavailable(retry_after_seconds: int | str, metric: str, **answer: Any) -> ErrorAnswer:
    """A 503 ``service_unavailable`` with ``Retry-After``, counted as ``metric``."""
    headers = {"Retry-After": str(retry_after_seconds)}
    return ErrorAnswer(503, "service_unavailable", headers=headers, metric=metric, **answer)


#: Counted once per request answered 503 or 500 because an AWS call failed
#: (:func:`dependency_failures`).
DEPENDENCY_FAILED_METRIC = "DependencyFailed"


@dataclass(frozen=True)
class TransientOrNot:
    """Two answers to one exception class: ``transient`` when the failed AWS call may
    succeed if made again (``handler_kit.aws_failures.is_transient``), else ``refused``."""

    transient: ErrorAnswer
    refused: ErrorAnswer

    def answer_for(self, exc: Exception) -> ErrorAnswer:
        """The answer to ``exc`` (a ``ClientError`` or ``BotoCoreError``)."""
        failed = isinstance(exc, ClientError | BotoCoreError) and is_transient(exc)
        return self.transient if failed else self.refused


def dependency_failures(
    retry_after_seconds: int | str,
) -> dict[type[Exception], ErrorAnswer | TransientOrNot]:
    """How every API answers an AWS call that failed after the SDK's own retries.

    A failure a later attempt may get past (a throttled call, an internal error of the
    service, the endpoint unreachable or too slow: ``ClientError`` or ``BotoCoreError``
    that botocore's standard mode retries) is 503 ``service_unavailable`` with
    ``Retry-After``. A call AWS refused (``AccessDenied``, ``ValidationException``, a
    missing table: a fault of the deployment or of the code, which a retry does not
    cure) is 500 ``server_error``, the answer the document gives a failed function.
    Either message names no service (AWS's own text is logged, never sent); either is
    logged with its traceback and counted as :data:`DEPENDENCY_FAILED_METRIC`. Nothing
    is written by the answer itself.

    Pass them to :func:`answer_errors` with the API's own answers, after these so that
    an API's own answer for ``ClientError`` would replace this one. A more specific
    answer still wins: Powertools answers an exception with the handler of the closest
    class in its MRO, so an exception a service raises for its own 503 or 409 (a
    ``RuntimeError`` or ``ValueError`` subclass, not a ``ClientError``) keeps its answer.

    Examples
    --------
    >>> answers = dependency_failures(2)
    >>> throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem")
    >>> denied = ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetItem")
    >>> answers[ClientError].answer_for(throttled).status_code
    503
    >>> answers[ClientError].answer_for(denied).status_code
    500
    """
    unavailable_answer = unavailable(
        retry_after_seconds,
        DEPENDENCY_FAILED_METRIC,
        message="a service the API depends on is unavailable; try again later",
    )
    refused = ErrorAnswer(
        500,
        "server_error",
        message="the request could not be completed",
        metric=DEPENDENCY_FAILED_METRIC,
        log=("exception", "AWS request refused"),
    )
    return {
        ClientError: TransientOrNot(
            transient=replace(unavailable_answer, log=("exception", "AWS request failed")),
            refused=refused,
        ),
        BotoCoreError: TransientOrNot(
            transient=replace(unavailable_answer, log=("exception", "AWS call failed in transit")),
            refused=replace(refused, log=("exception", "AWS request not sent")),
        ),
    }


def answer_errors(
    app: APIGatewayRestResolver,
    answers: Mapping[type[Exception], ErrorAnswer | TransientOrNot],
    *,
    logger: Logger,
    metrics: Metrics | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Register an exception handler of ``app`` per entry of ``answers``: its
    :class:`ErrorAnswer`, or the one its :class:`TransientOrNot` picks for the failure.

    Examples
    --------
    >>> app = APIGatewayRestResolver()
    >>> answer_errors(app, {KeyError: ErrorAnswer(404, "not_found")}, logger=Logger(service="docs"))
    """
    extra = dict(headers or {})

    def handler_of(choice: ErrorAnswer | TransientOrNot) -> Callable[[Exception], Response[str]]:
        def answer_error(exc: Exception) -> Response[str]:
            answer = choice.answer_for(exc) if isinstance(choice, TransientOrNot) else choice
            if answer.metric is not None and metrics is not None:
                metrics.add_metric(name=answer.metric, unit=MetricUnit.Count, value=1)
            if answer.log is not None:
                level, line = answer.log
                if level == "exception":
                    logger.exception(line)
                else:
                    getattr(logger, level)(line, reason=str(exc))
            message = str(exc) if answer.message is None else answer.message
            return error_response(
                answer.status_code, answer.code, message, {**extra, **answer.headers}
            )

        return answer_error

    for exc_class, answer in answers.items():
        app.exception_handler(exc_class)(handler_of(answer))
