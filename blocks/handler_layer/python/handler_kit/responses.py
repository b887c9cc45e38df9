"""Shaping API Gateway REST responses: JSON bodies and the common client errors."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

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
