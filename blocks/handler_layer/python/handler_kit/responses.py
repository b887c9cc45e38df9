"""Shaping API Gateway REST responses: JSON bodies and the common client errors."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from handler_kit.aws_failures import is_transient
from handler_kit.errors import (
    AmbiguousIdempotencyKeyError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

#: C0 controls and DEL. API Gateway hands a path parameter over decoded (``%0A`` is a
#: newline), and Powertools matches routes with ``re.match(r"^...$")``, whose ``$`` also
#: matches before a final newline: ``/jobs/<id>%0A`` would be served as ``/jobs/<id>``.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")

#: A path segment of RFC 3986's characters (``pchar``, decoded). Powertools' route
#: patterns accept every such value (and some others, letters beyond ASCII among them),
#: so when a route API Gateway matched does not match here, a parameter holding another
#: character (an emoji, a quote, a backslash) is why.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*")

#: A Lambda entry point.
LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


@dataclass(frozen=True)
class StoredResponse:
    """A response as first sent: status, exact body text and the headers of the contract.

    Kept with an idempotency record so that a retry is answered with the first answer
    byte for byte (:func:`replay`), never with a re-serialization of it.

    Attributes
    ----------
    status_code : int
        The first answer's status.
    body : str
        Its body, exactly as sent.
    headers : dict
        The headers that belong to the answer (e.g. ``Location``), not per-request ones.
    """

    status_code: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The record's stored form (the body stays one string inside it)."""
        return json.dumps(
            {"status_code": self.status_code, "body": self.body, "headers": dict(self.headers)},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> StoredResponse:
        """Read :meth:`to_json` back.

        Examples
        --------
        >>> first = stored_json(201, {"b": 1, "a": 2}, {"Location": "/x"})
        >>> StoredResponse.from_json(first.to_json()) == first
        True
        """
        data = json.loads(text)
        return cls(
            status_code=int(data["status_code"]),
            body=str(data["body"]),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
        )


def stored_json(
    status_code: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> StoredResponse:
    """Serialize a JSON answer once, compactly, in the body's own key order.

    Examples
    --------
    >>> stored_json(200, {"b": 1, "a": 2}).body
    '{"b":1,"a":2}'
    """
    return StoredResponse(status_code, json.dumps(body, separators=(",", ":")), dict(headers or {}))


def replay(stored: StoredResponse, headers: Mapping[str, str] | None = None) -> Response[str]:
    """Send a stored answer: its status and body byte for byte, its headers plus ``headers``.

    The first answer goes through here too, so first answers and replays cannot drift.

    Examples
    --------
    >>> replay(stored_json(202, {"z": 1, "a": 2}), {"Idempotent-Replayed": "true"}).body
    '{"z":1,"a":2}'
    """
    return Response(
        status_code=stored.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=stored.body,
        headers={**stored.headers, **(headers or {})},
    )


def json_response(
    status_code: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response[str]:
    """A compact JSON response.

    Examples
    --------
    >>> json_response(200, {"ok": True}).body
    '{"ok":true}'
    """
    return replay(stored_json(status_code, body, headers))


def error_response(
    status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response[str]:
    """The error shape of every API: ``{"error": code, "message": message}``.

    Examples
    --------
    >>> error_response(404, "not_found", "no such job").body
    '{"error":"not_found","message":"no such job"}'
    """
    return json_response(status_code, {"error": code, "message": message}, headers)


def register_error_handlers(
    app: APIGatewayRestResolver,
    *,
    logger: Logger,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer the common client errors of ``app`` as JSON, the same way in every API.

    ``InvalidRequestError`` is 400 ``invalid_request``, ``AmbiguousIdempotencyKeyError``
    400 ``ambiguous_idempotency_key``, ``PayloadTooLargeError`` 400 ``payload_too_large``,
    ``UnsupportedMediaTypeError`` 415 ``unsupported_media_type``,
    ``IdempotencyKeyReusedError`` 422 ``idempotency_key_reused`` and an unknown route 404
    ``not_found``. A path with a control character (a newline,
    say) is 400 ``invalid_request`` before its route runs, and so is a path parameter
    that no route pattern takes (an emoji, a quote): API Gateway found its resource, so
    the id is malformed, not missing. A handler the app registers
    for a subclass (e.g. a 400 ``invalid_time``) still wins: Powertools picks the
    closest class.

    Parameters
    ----------
    app : APIGatewayRestResolver
        The API's resolver.
    logger : Logger
        The API's logger: rejected requests are logged at INFO with the reason.
    headers : Mapping[str, str], optional
        Headers added to every one of these error responses (e.g. ``Cache-Control``).

    Examples
    --------
    >>> app = APIGatewayRestResolver()
    >>> register_error_handlers(app, logger=Logger(service="docs"))
    """
    extra = dict(headers or {})

    def rejected(status_code: int, code: str, exc: Exception) -> Response[str]:
        logger.info("rejected request", reason=str(exc))
        return error_response(status_code, code, str(exc), extra)

    def refuse_control_characters(
        api: APIGatewayRestResolver, next_middleware: Callable[..., Response[str]]
    ) -> Response[str]:
        if _CONTROL_CHARACTER.search(api.current_event.path):
            raise InvalidRequestError("the path must not contain control characters")
        return next_middleware(api)

    app.use(middlewares=[refuse_control_characters])

    # The client's mistakes: each error class, its status and its code.
    for error_class, status_code, code in (
        (InvalidRequestError, 400, "invalid_request"),
        (AmbiguousIdempotencyKeyError, 400, "ambiguous_idempotency_key"),
        (PayloadTooLargeError, 400, "payload_too_large"),
        (UnsupportedMediaTypeError, 415, "unsupported_media_type"),
        (IdempotencyKeyReusedError, 422, "idempotency_key_reused"),
    ):
        app.exception_handler(error_class)(functools.partial(rejected, status_code, code))

    @app.not_found
    def _route_not_found(exc: NotFoundError) -> Response[str]:
        event = app.current_event
        parameters = event.path_parameters or {}
        malformed = sorted(k for k, v in parameters.items() if not _PATH_SEGMENT.fullmatch(v))
        if malformed:
            problem = InvalidRequestError(f"malformed path parameter: {', '.join(malformed)}")
            return rejected(400, "invalid_request", problem)
        message = f"no route for {event.http_method} {event.path}"
        return error_response(404, "not_found", message, extra)


def progress_response(
    body: Mapping[str, Any], *, finished: bool, retry_after_seconds: int
) -> Response[str]:
    """The answer of a polled resource: 200 once finished, else 202 with ``Retry-After``.

    Neither is cached (``Cache-Control: no-store``).
    """
    headers = {"Cache-Control": "no-store"}
    if finished:
        return json_response(200, body, headers)
    return json_response(202, body, {**headers, "Retry-After": str(retry_after_seconds)})


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


def rest_api_handler(
    app: APIGatewayRestResolver, *, logger: Logger, metrics: Metrics | None = None
) -> LambdaHandler:
    """The Lambda entry point of a REST API: resolve the event with ``app``.

    Each invocation's logs carry the Lambda context and the API request id as
    correlation id (state of the previous invocation cleared); with ``metrics``, its
    metrics (and a cold start metric) are flushed at the end.

    Parameters
    ----------
    app : APIGatewayRestResolver
        The API's resolver, routes and error handlers registered.
    logger : Logger
        The function's logger.
    metrics : Metrics, optional
        The function's metrics, if it publishes any.

    Examples
    --------
    >>> app = APIGatewayRestResolver()
    >>> handler = rest_api_handler(app, logger=Logger(service="docs"))
    """

    def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    entry: LambdaHandler = resolve
    if metrics is not None:
        entry = metrics.log_metrics(capture_cold_start_metric=True)(entry)
    handler: LambdaHandler = logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
    )(entry)
    return handler
